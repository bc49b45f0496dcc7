{{ config(tags=['orders']) }}

select
    cast(order_id as {{ dbt.type_string() }})                          as order_id,
    cast(customer_id as {{ dbt.type_string() }})                       as customer_id,
    cast(lower(order_status) as {{ dbt.type_string() }})               as order_status,
    cast(order_purchase_timestamp as {{ dbt.type_timestamp() }})       as purchased_at,
    cast(order_approved_at as {{ dbt.type_timestamp() }})              as approved_at,
    cast(order_delivered_carrier_date as {{ dbt.type_timestamp() }})   as delivered_to_carrier_at,
    cast(order_delivered_customer_date as {{ dbt.type_timestamp() }})  as delivered_at,
    cast(order_estimated_delivery_date as {{ dbt.type_timestamp() }})  as estimated_delivery_at,
    cast(updated_at as {{ dbt.type_timestamp() }})                     as updated_at,
    cast(_loaded_at as {{ dbt.type_timestamp() }})                     as loaded_at
from {{ source('landing', 'orders') }}
