{# Built by every pipeline's `stg_<table>+` selection (it reads all five staging views). #}
{{ config(tags=['data_quality']) }}

{#
  Data quality: one row per relationship of the star schema (always four rows), with the
  rows whose parent row is missing (orphans) and the share of money they carry. The facts
  keep these rows (see macros/unknown_members.sql); this mart says how much of the data sits
  on them, for the run's output and the dashboard's data-quality panel.
#}
with orders as (
    select order_id, customer_id from {{ ref('stg_orders') }}
),

customers as (
    select customer_id from {{ ref('stg_customers') }}
),

products as (
    select product_id from {{ ref('stg_products') }}
),

item_revenue as (
    select order_id, sum(price) as revenue from {{ ref('stg_order_items') }} group by order_id
),

checks as (
    select
        1 as relationship_order,
        case when orders.order_id is null then 1 else 0 end as is_orphan,
        items.price as amount
    from {{ ref('stg_order_items') }} as items
    left join orders on items.order_id = orders.order_id

    union all

    select
        2,
        case when products.product_id is null then 1 else 0 end,
        items.price
    from {{ ref('stg_order_items') }} as items
    left join products on items.product_id = products.product_id

    union all

    select
        3,
        case when customers.customer_id is null then 1 else 0 end,
        coalesce(item_revenue.revenue, 0)
    from orders
    left join customers on orders.customer_id = customers.customer_id
    left join item_revenue on orders.order_id = item_revenue.order_id

    union all

    select
        4,
        case when orders.order_id is null then 1 else 0 end,
        payments.payment_value
    from {{ ref('stg_payments') }} as payments
    left join orders on payments.order_id = orders.order_id
),

relationships as (
    select 1 as relationship_order, 'order_items.order_id -> orders.order_id' as relationship,
           'order items' as child_rows_name, 'order' as parent_name, 'item revenue' as measure
    union all select 2, 'order_items.product_id -> products.product_id', 'order items', 'product', 'item revenue'
    union all select 3, 'orders.customer_id -> customers.customer_id', 'orders', 'customer', 'item revenue'
    union all select 4, 'payments.order_id -> orders.order_id', 'payments', 'order', 'payment value'
),

totals as (
    select
        relationship_order,
        count(*)                                             as total_rows,
        sum(is_orphan)                                       as orphan_rows,
        sum(amount)                                          as total_amount,
        sum(case when is_orphan = 1 then amount else 0 end)  as orphan_amount
    from checks
    group by relationship_order
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
