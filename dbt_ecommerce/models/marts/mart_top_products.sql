{{ config(tags=['report', 'orders', 'order_items', 'products']) }}

{# Products ranked by revenue, all time: one row per product with a sale. #}
with lines as (
    select
        items.product_id,
        items.product_category,
        items.order_id,
        items.price,
        items.freight_value,
        orders.purchase_date
    from {{ ref('fact_order_items') }} as items
    inner join {{ ref('fact_orders') }} as orders
        on items.order_id = orders.order_id
    where {{ is_sale('orders.order_status') }}
),

{#
  Per product and order first, then per product: the orders are counted as rows, not with a
  count(distinct order_id) per product, which costs DuckDB a set per product (333,333 of them:
  1.4 s against 0.5 s at 1M orders, benchmarks/profile.md).
#}
product_orders as (
    select
        product_id,
        product_category,
        order_id,
        count(*)            as units,
        sum(price)          as revenue,
        sum(freight_value)  as freight,
        min(purchase_date)  as purchase_date
    from lines
    group by product_id, product_category, order_id
),

totals as (
    select
        product_id,
        product_category    as category,
        count(*)            as orders,
        sum(units)          as units,
        sum(revenue)        as revenue,
        sum(freight)        as freight,
        min(purchase_date)  as first_sale_date,
        max(purchase_date)  as last_sale_date
    from product_orders
    group by product_id, product_category
)

select
    cast(row_number() over (order by revenue desc, product_id) as {{ dbt.type_bigint() }}) as revenue_rank,
    product_id,
    category,
    cast(orders as {{ dbt.type_bigint() }})         as orders,
    cast(units as {{ dbt.type_bigint() }})          as units,
    cast(revenue as decimal(18, 2))                 as revenue,
    cast(coalesce(freight, 0) as decimal(18, 2))    as freight,  -- lines without freight add none
    {{ money_ratio('revenue', 'units') }}           as average_price,
    {{ ratio('revenue', 'sum(revenue) over ()') }}  as revenue_share,
    first_sale_date,
    last_sale_date
from totals
