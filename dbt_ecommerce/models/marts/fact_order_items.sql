{{ config(tags=['order_items', 'orders', 'products']) }}

{#
  One row per order line (order_id + order_item_id): every line of the source, those whose
  order or product row is missing included (has_order false; product_key '-1', the unknown
  product). order_id and product_id are the source's; product_key and customer_key point at
  the dimensions' rows (the unknown member '-1' when missing, see macros/unknown_members.sql).
#}
with items as (
    select * from {{ ref('stg_order_items') }}
),

orders as (
    select order_id, customer_id, purchased_at from {{ ref('stg_orders') }}
),

customers as (
    select customer_id from {{ ref('stg_customers') }}
),

products as (
    select product_id, category from {{ ref('dim_products') }}
    where not is_unknown_member
)

select
    items.order_id,
    items.order_item_id,
    items.product_id,
    {{ member_key('products.product_id', 'items.product_id') }} as product_key,
    coalesce(products.category, {{ missing_label('product') }}) as product_category,
    items.seller_id,
    orders.customer_id,
    {{ member_key('customers.customer_id', 'orders.customer_id') }} as customer_key,
    case when orders.order_id is null then false else true end as has_order,
    {{ date_key('orders.purchased_at') }} as purchase_date_key,
    items.shipping_limit_at,
    items.price,
    items.freight_value,
    cast(items.price + items.freight_value as decimal(14, 2)) as line_total
from items
left join orders
    on items.order_id = orders.order_id
left join customers
    on orders.customer_id = customers.customer_id
left join products
    on items.product_id = products.product_id
