{{ config(tags=['payments']) }}

select
    cast(order_id as {{ dbt.type_string() }})           as order_id,
    cast(payment_sequential as {{ dbt.type_int() }})    as payment_sequential,
    cast(lower(payment_type) as {{ dbt.type_string() }}) as payment_type,
    cast(payment_installments as {{ dbt.type_int() }})  as installments,
    cast(payment_value as decimal(12, 2))               as payment_value,
    cast(updated_at as {{ dbt.type_timestamp() }})      as updated_at,
    cast(_loaded_at as {{ dbt.type_timestamp() }})      as loaded_at
from {{ source('landing', 'payments') }}
