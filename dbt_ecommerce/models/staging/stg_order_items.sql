{{ config(tags=['order_items']) }}

select
    cast(order_id as {{ dbt.type_string() }})               as order_id,
    cast(order_item_id as {{ dbt.type_int() }})             as order_item_id,
    cast(product_id as {{ dbt.type_string() }})             as product_id,
    cast(seller_id as {{ dbt.type_string() }})              as seller_id,
    cast(shipping_limit_date as {{ dbt.type_timestamp() }}) as shipping_limit_at,
    cast(price as decimal(12, 2))                           as price,
    cast(freight_value as decimal(12, 2))                   as freight_value,
    cast(updated_at as {{ dbt.type_timestamp() }})          as updated_at,
    cast(_loaded_at as {{ dbt.type_timestamp() }})          as loaded_at
from {{ source('landing', 'order_items') }}
