-- Singular test: the order fact carries exactly the revenue and freight of the
-- order lines (no order line lost or duplicated by the joins).
{{ config(tags=['orders', 'order_items']) }}

with fact as (
    select sum(items_revenue) as revenue, sum(freight_total) as freight, sum(item_count) as n_items
    from {{ ref('fact_orders') }}
),

lines as (
    select sum(price) as revenue, sum(freight_value) as freight, count(*) as n_items
    from {{ ref('stg_order_items') }}
)

select
    fact.revenue  as fact_revenue,
    lines.revenue as lines_revenue,
    fact.freight  as fact_freight,
    lines.freight as lines_freight,
    fact.n_items  as fact_items,
    lines.n_items as lines_items
from fact cross join lines
-- Half a cent of tolerance: fakesnow sums NUMBER as DOUBLE (Snowflake and DuckDB sum exactly).
where abs(coalesce(fact.revenue, 0) - coalesce(lines.revenue, 0)) >= 0.005
   or abs(coalesce(fact.freight, 0) - coalesce(lines.freight, 0)) >= 0.005
   or coalesce(fact.n_items, 0) <> coalesce(lines.n_items, 0)
