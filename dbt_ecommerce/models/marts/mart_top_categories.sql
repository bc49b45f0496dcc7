{{ config(tags=['report', 'orders', 'order_items', 'products']) }}

{# Product categories ranked by revenue, all time: one row per category with a sale. #}
with totals as (
    select
        category,
        sum(orders)  as orders,
        sum(items)   as items,
        sum(revenue) as revenue,
        sum(freight) as freight
    from {{ ref('mart_revenue_by_category') }}
    group by category
)

select
    cast(row_number() over (order by revenue desc, category) as {{ dbt.type_bigint() }}) as revenue_rank,
    category,
    cast(orders as {{ dbt.type_bigint() }})                  as orders,
    cast(items as {{ dbt.type_bigint() }})                   as items,
    cast(revenue as decimal(18, 2))                          as revenue,
    cast(freight as decimal(18, 2))                          as freight,
    {{ money_ratio('revenue', 'items') }}                    as average_item_price,
    {{ ratio('revenue', 'sum(revenue) over ()') }}           as revenue_share
from totals
