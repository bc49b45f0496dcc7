-- Singular test (blocks the build: a failure is a bug in the models, never dirty data):
-- fact_order_items keeps exactly the lines of the source (none lost or duplicated by the
-- joins, orphans included), and the order fact carries exactly the revenue, freight and
-- count of the lines whose order exists.
{{ config(tags=['orders', 'order_items']) }}

with source_lines as (
    select sum(price) as revenue, sum(freight_value) as freight, count(*) as n_items
    from {{ ref('stg_order_items') }}
),

fact_lines as (
    select sum(price) as revenue, sum(freight_value) as freight, count(*) as n_items,
           sum(case when has_order then price else 0 end) as ordered_revenue,
           sum(case when has_order then freight_value else 0 end) as ordered_freight,
           sum(case when has_order then 1 else 0 end) as ordered_items
    from {{ ref('fact_order_items') }}
),

fact as (
    select sum(items_revenue) as revenue, sum(freight_total) as freight, sum(item_count) as n_items
    from {{ ref('fact_orders') }}
)

select
    fact.revenue             as fact_orders_revenue,
    fact_lines.ordered_revenue as fact_lines_ordered_revenue,
    fact_lines.revenue       as fact_lines_revenue,
    source_lines.revenue     as source_lines_revenue,
    fact_lines.n_items       as fact_lines_items,
    source_lines.n_items     as source_lines_items
from fact cross join fact_lines cross join source_lines
-- Half a cent of tolerance: fakesnow sums NUMBER as DOUBLE (Snowflake and DuckDB sum exactly).
where abs(coalesce(fact_lines.revenue, 0) - coalesce(source_lines.revenue, 0)) >= 0.005
   or abs(coalesce(fact_lines.freight, 0) - coalesce(source_lines.freight, 0)) >= 0.005
   or coalesce(fact_lines.n_items, 0) <> coalesce(source_lines.n_items, 0)
   or abs(coalesce(fact.revenue, 0) - coalesce(fact_lines.ordered_revenue, 0)) >= 0.005
   or abs(coalesce(fact.freight, 0) - coalesce(fact_lines.ordered_freight, 0)) >= 0.005
   or coalesce(fact.n_items, 0) <> coalesce(fact_lines.ordered_items, 0)
