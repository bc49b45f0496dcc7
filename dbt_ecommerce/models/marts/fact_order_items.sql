{{ config(
    tags=['order_items', 'orders', 'products'],
    materialized='incremental',
    unique_key=['order_id', 'order_item_id'],
    incremental_strategy='delete+insert',
    tmp_relation_type='transient',
    on_schema_change='fail',
    post_hook="{{ delete_gone('stg_order_items', ['order_id', 'order_item_id']) }}",
) }}

{#
  One row per order line (order_id + order_item_id): every line of the source, those whose
  order or product row is missing included (has_order false; product_key '-1', the unknown
  product). order_id and product_id are the source's; product_key and customer_key point at
  the dimensions' rows (the unknown member '-1' when missing, see macros/unknown_members.sql).
  Incremental (macros/incremental_facts.sql): a build rebuilds the lines whose row, order or
  customer was written since the last one, those whose product dim_products rewrote since
  (written, or its category renamed by the seed), and those whose order, customer or product
  was deleted since.
#}
with
{% if is_incremental() %}
changed_orders as (
    select order_id from {{ ref('stg_orders') }} where loaded_at > {{ loaded_since() }}
    union
    select orders.order_id
    from {{ ref('stg_orders') }} as orders
    inner join {{ ref('stg_customers') }} as customers
        on orders.customer_id = customers.customer_id
    where customers.loaded_at > {{ loaded_since() }}
),

changed as (
    select order_id, order_item_id from {{ ref('stg_order_items') }}
    where loaded_at > {{ loaded_since() }}
       or order_id in (select order_id from changed_orders)
       {# products dim_products rewrote since: written since, or named otherwise by the seed #}
       or product_id in (select product_id from {{ ref('dim_products') }} where built_at > {{ built_since() }})
    union
    {# deleted since: the order, customer or product row (back to the unknown member) #}
    select fact.order_id, fact.order_item_id
    from {{ this }} as fact
    left join {{ ref('stg_orders') }} as orders
        on fact.order_id = orders.order_id
    left join {{ ref('stg_customers') }} as customers
        on fact.customer_key = customers.customer_id
    left join {{ ref('dim_products') }} as products
        on fact.product_key = products.product_id
    where (fact.has_order and orders.order_id is null)
       or (fact.customer_key <> {{ unknown_key() }} and customers.customer_id is null)
       or (fact.product_key <> {{ unknown_key() }} and products.product_id is null)
),

{% endif %}
items as (
    select lines.* from {{ ref('stg_order_items') }} as lines
    {% if is_incremental() %}
    inner join changed
        on lines.order_id = changed.order_id and lines.order_item_id = changed.order_item_id
    {% endif %}
),

orders as (
    select order_id, customer_id, purchased_at, loaded_at from {{ ref('stg_orders') }}
),

customers as (
    select customer_id, loaded_at from {{ ref('stg_customers') }}
),

products as (
    select product_id, category, loaded_at
    from {{ ref('dim_products') }}
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
    cast(items.price + items.freight_value as decimal(14, 2)) as line_total,
    {# the newest landing write this row is built from (incremental builds start after it) #}
    {{ newest_loaded_at('items.loaded_at', ['orders.loaded_at', 'customers.loaded_at', 'products.loaded_at']) }} as loaded_at,
    {# the build that wrote this row: tests read the newest build's rows (macros/last_build_rows.sql) #}
    {{ build_started_at() }} as built_at
from items
left join orders
    on items.order_id = orders.order_id
left join customers
    on orders.customer_id = customers.customer_id
left join products
    on items.product_id = products.product_id
