{{ config(tags=['report', 'orders', 'order_items', 'products']) }}

{#
  Revenue and orders by purchase month and product category: one row per month
  and category with at least one sold item. An order with items of two
  categories counts once in each.
#}
with lines as (
    select
        {{ month_start('orders.purchase_date') }} as month_start_date,
        items.product_category                 as category,
        items.order_id,
        items.price,
        items.freight_value
    from {{ ref('fact_order_items') }} as items
    inner join {{ ref('fact_orders') }} as orders
        on items.order_id = orders.order_id
    where {{ is_sale('orders.order_status') }}
)

select
    month_start_date,
    category,
    cast(count(distinct order_id) as {{ dbt.type_bigint() }}) as orders,
    cast(count(*) as {{ dbt.type_bigint() }})                 as items,
    cast(sum(price) as decimal(18, 2))                        as revenue,
    -- a line without freight adds none (as fact_orders counts it): a group of only such
    -- lines has 0, not null
    cast(coalesce(sum(freight_value), 0) as decimal(18, 2))   as freight
from lines
group by month_start_date, category
