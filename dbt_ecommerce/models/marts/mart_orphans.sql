{# Built by every pipeline's `stg_<table>+` selection (the three facts read all five staging views). #}
{{ config(tags=['data_quality']) }}

{#
  Data quality: one row per relationship of the star schema (always four rows), with the
  rows whose parent row is missing (orphans) and the share of money they carry. The facts
  keep these rows (see macros/unknown_members.sql) and mark them: a line or payment without
  its order has has_order false, an order without its customer or a line without its product
  points at the unknown member. Counted from the facts, not staging: the facts are tables
  (staging views cast every landing row on each read) and already hold the joins.
#}
with totals as (
    select
        1                                                               as relationship_order,
        count(*)                                                        as total_rows,
        sum(case when has_order then 0 else 1 end)                      as orphan_rows,
        sum(price)                                                      as total_amount,
        sum(case when has_order then 0 else price end)                  as orphan_amount
    from {{ ref('fact_order_items') }}

    union all

    select
        2,
        count(*),
        sum(case when product_key = {{ unknown_key() }} then 1 else 0 end),
        sum(price),
        sum(case when product_key = {{ unknown_key() }} then price else 0 end)
    from {{ ref('fact_order_items') }}

    union all

    {# an order's money is the revenue of its lines (0 without lines) #}
    select
        3,
        count(*),
        sum(case when customer_key = {{ unknown_key() }} then 1 else 0 end),
        sum(items_revenue),
        sum(case when customer_key = {{ unknown_key() }} then items_revenue else 0 end)
    from {{ ref('fact_orders') }}

    union all

    select
        4,
        count(*),
        sum(case when has_order then 0 else 1 end),
        sum(payment_value),
        sum(case when has_order then 0 else payment_value end)
    from {{ ref('fact_payments') }}
),

relationships as (
    select 1 as relationship_order, 'order_items.order_id -> orders.order_id' as relationship,
           'order items' as child_rows_name, 'order' as parent_name, 'item revenue' as measure
    union all select 2, 'order_items.product_id -> products.product_id', 'order items', 'product', 'item revenue'
    union all select 3, 'orders.customer_id -> customers.customer_id', 'orders', 'customer', 'item revenue'
    union all select 4, 'payments.order_id -> orders.order_id', 'payments', 'order', 'payment value'
)

select
    relationships.relationship_order,
    relationships.relationship,
    relationships.child_rows_name,
    relationships.parent_name,
    relationships.measure,
    cast(coalesce(totals.total_rows, 0) as {{ dbt.type_bigint() }})     as total_rows,
    cast(coalesce(totals.orphan_rows, 0) as {{ dbt.type_bigint() }})    as orphan_rows,
    cast(coalesce(totals.total_amount, 0) as decimal(18, 2))            as total_amount,
    cast(coalesce(totals.orphan_amount, 0) as decimal(18, 2))           as orphan_amount,
    {{ ratio('totals.orphan_amount', 'totals.total_amount') }}          as orphan_share
from relationships
left join totals
    on relationships.relationship_order = totals.relationship_order
