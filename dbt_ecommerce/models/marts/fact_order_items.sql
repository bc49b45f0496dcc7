{{ config(tags=['order_items', 'orders', 'products']) }}

{# One row per order line (order_id + order_item_id). #}
with items as (
    select * from {{ ref('stg_order_items') }}
),

orders as (
    select order_id, customer_id, purchased_at from {{ ref('stg_orders') }}
),

products as (
    select product_id, category_name from {{ ref('stg_products') }}
)

select
    items.order_id,
    items.order_item_id,
    items.product_id,
    coalesce(products.category_name, 'unknown') as product_category,
    items.seller_id,
    orders.customer_id,
    {{ date_key('orders.purchased_at') }} as purchase_date_key,
    items.shipping_limit_at,
    items.price,
    items.freight_value,
    cast(items.price + items.freight_value as decimal(14, 2)) as line_total
from items
left join orders
    on items.order_id = orders.order_id
left join products
    on items.product_id = products.product_id
