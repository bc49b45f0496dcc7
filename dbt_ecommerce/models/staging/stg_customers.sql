{{ config(tags=['customers']) }}

select
    cast(customer_id as {{ dbt.type_string() }})              as customer_id,
    cast(customer_unique_id as {{ dbt.type_string() }})       as customer_unique_id,
    cast(customer_zip_code_prefix as {{ dbt.type_string() }}) as zip_code_prefix,
    cast(customer_city as {{ dbt.type_string() }})            as city,
    cast(customer_state as {{ dbt.type_string() }})           as state,
    cast(updated_at as {{ dbt.type_timestamp() }})            as updated_at,
    cast(_loaded_at as {{ dbt.type_timestamp() }})            as loaded_at
from {{ source('landing', 'customers') }}
