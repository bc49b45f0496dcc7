{{ config(
    tags=['orders', 'order_items', 'payments'],
    materialized='incremental',
    unique_key='order_id',
    incremental_strategy='delete+insert',
    tmp_relation_type='transient',
    on_schema_change='fail',
    post_hook="{{ delete_gone('stg_orders', ['order_id']) }}",
) }}

-- depends_on: {{ ref('fact_order_items') }}
-- depends_on: {{ ref('fact_payments') }}

{#
  One row per order, with item, freight and payment totals and delivery metrics. Every order
  is kept: customer_id is the source's, customer_key the dim_customers row ('-1', the unknown
  member, while the customer row is missing).
  Incremental (macros/incremental_facts.sql): a build rebuilds the orders whose row, customer,
  lines or payments were written since the last one, and those whose customer, lines or
  payments were deleted since.
  Lines and payments deleted since: an order no write touched can only have lost lines and
  payments, never gained any (a new line is a write, so its order is rebuilt), so its stored
  item_count and payment_count are at least the real ones, and their sum over those orders
  equals the number of such lines (fact_order_items with has_order, built before this model)
  and payments (fact_payments) exactly when none was deleted. Only then, or when orders were
  deleted (the table keeps a row per order, so it has more than the source, less the new
  ones), does the build count every order's lines and payments to find which.
#}
{% if is_incremental() %}
{% set written_since %}
    select order_id from {{ ref('stg_orders') }} where loaded_at > {{ loaded_since() }}
    union
    select order_id from {{ ref('stg_order_items') }} where loaded_at > {{ loaded_since() }}
    union
    select order_id from {{ ref('stg_payments') }} where loaded_at > {{ loaded_since() }}
    union
    select orders.order_id
    from {{ ref('stg_orders') }} as orders
    inner join {{ ref('stg_customers') }} as customers
        on orders.customer_id = customers.customer_id
    where customers.loaded_at > {{ loaded_since() }}
{% endset %}
{% set counts_differ %}
    with written as ({{ written_since }}),

    new_orders as (
        select order_id from {{ ref('stg_orders') }} where loaded_at > {{ loaded_since() }}
    ),

    stored as (
        select count(*) as orders, sum(item_count) as items, sum(payment_count) as payments
        from {{ this }}
    ),

    {# the written orders' stored counts: the semi-joins below probe the big tables with the
       small sets, so the check costs little beside counting every order's lines #}
    stored_written as (
        select sum(item_count) as items, sum(payment_count) as payments
        from {{ this }}
        where order_id in (select order_id from written)
    )

    select
        stored.orders
        + (select count(*) from new_orders)
        - (select count(*) from {{ this }} where order_id in (select order_id from new_orders))
        - (select count(*) from {{ ref('stg_orders') }})                                    as orders_gone,
        coalesce(stored.items, 0) - coalesce(stored_written.items, 0)
        - (select count(*) from {{ ref('fact_order_items') }} where has_order)
        + (select count(*) from {{ ref('fact_order_items') }}
           where has_order and order_id in (select order_id from written))                 as lines_gone,
        coalesce(stored.payments, 0) - coalesce(stored_written.payments, 0)
        - (select count(*) from {{ ref('fact_payments') }} where has_order)
        + (select count(*) from {{ ref('fact_payments') }}
           where has_order and order_id in (select order_id from written))                 as payments_gone
    from stored
    cross join stored_written
{% endset %}
{% set gone = run_query(counts_differ).rows[0] if execute else [0, 0, 0] %}
{% set something_deleted = gone | select('ne', 0) | list | length > 0 %}
{% endif %}
with
{% if is_incremental() %}
changed as (
    {{ written_since }}
    union
    {# the customer row deleted since (back to the unknown member) #}
    select fact.order_id
    from {{ this }} as fact
    left join {{ ref('stg_customers') }} as customers
        on fact.customer_key = customers.customer_id
    where fact.customer_key <> {{ unknown_key() }} and customers.customer_id is null
    {% if something_deleted %}
    union
    {# lines or payments deleted since (or orders: their rows go in the post-hook) #}
    select fact.order_id
    from {{ this }} as fact
    left join (
        select order_id, count(*) as item_count from {{ ref('stg_order_items') }} group by order_id
    ) as line_counts
        on fact.order_id = line_counts.order_id
    left join (
        select order_id, count(*) as payment_count from {{ ref('stg_payments') }} group by order_id
    ) as payment_counts
        on fact.order_id = payment_counts.order_id
    where fact.item_count <> coalesce(line_counts.item_count, 0)
       or fact.payment_count <> coalesce(payment_counts.payment_count, 0)
    {% endif %}
),

{% endif %}
orders as (
    select * from {{ ref('stg_orders') }}
    {% if is_incremental() %}where order_id in (select order_id from changed){% endif %}
),

customers as (
    select customer_id, loaded_at from {{ ref('stg_customers') }}
),

items as (
    select
        order_id,
        count(*)           as item_count,
        sum(price)         as items_revenue,
        sum(freight_value) as freight_total,
        max(loaded_at)     as loaded_at
    from {{ ref('stg_order_items') }}
    {% if is_incremental() %}where order_id in (select order_id from changed){% endif %}
    group by order_id
),

payments as (
    select
        order_id,
        count(*)           as payment_count,
        sum(payment_value) as payment_total,
        max(loaded_at)     as loaded_at
    from {{ ref('stg_payments') }}
    {% if is_incremental() %}where order_id in (select order_id from changed){% endif %}
    group by order_id
)

select
    orders.order_id,
    orders.customer_id,
    {{ member_key('customers.customer_id', 'orders.customer_id') }} as customer_key,
    orders.order_status,
    orders.purchased_at,
    cast(orders.purchased_at as date) as purchase_date,
    {{ date_key('orders.purchased_at') }} as purchase_date_key,
    orders.approved_at,
    coalesce(items.item_count, 0)                                  as item_count,
    case when items.order_id is null then false else true end      as has_items,
    cast(coalesce(items.items_revenue, 0) as decimal(14, 2))       as items_revenue,
    cast(coalesce(items.freight_total, 0) as decimal(14, 2))       as freight_total,
    cast(coalesce(items.items_revenue, 0) + coalesce(items.freight_total, 0) as decimal(14, 2)) as order_total,
    coalesce(payments.payment_count, 0)                            as payment_count,
    cast(coalesce(payments.payment_total, 0) as decimal(14, 2))    as payment_total,
    orders.delivered_at,
    orders.estimated_delivery_at,
    case when orders.delivered_at is not null then true else false end as is_delivered,
    case
        when orders.delivered_at is not null
            then {{ dbt.datediff('orders.purchased_at', 'orders.delivered_at', 'day') }}
    end as days_to_deliver,
    case
        when orders.delivered_at is not null and orders.estimated_delivery_at is not null
            then {{ dbt.datediff('cast(orders.estimated_delivery_at as date)', 'cast(orders.delivered_at as date)', 'day') }}
    end as days_late,
    {# Late = delivered on a later calendar day than the estimate; null while not delivered #}
    case
        when orders.delivered_at is null or orders.estimated_delivery_at is null then null
        when cast(orders.delivered_at as date) > cast(orders.estimated_delivery_at as date) then true
        else false
    end as is_late,
    {# the newest landing write this row is built from (incremental builds start after it) #}
    {{ newest_loaded_at('orders.loaded_at', ['customers.loaded_at', 'items.loaded_at', 'payments.loaded_at']) }} as loaded_at,
    {# the build that wrote this row: tests read the newest build's rows (macros/last_build_rows.sql) #}
    {{ build_started_at() }} as built_at
from orders
left join items
    on orders.order_id = items.order_id
left join payments
    on orders.order_id = payments.order_id
left join customers
    on orders.customer_id = customers.customer_id
