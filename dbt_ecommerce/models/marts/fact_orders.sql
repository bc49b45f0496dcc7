{{ config(tags=['orders', 'order_items', 'payments']) }}

{#
  One row per order, with item, freight and payment totals and delivery metrics. Every order
  is kept: customer_id is the source's, customer_key the dim_customers row ('-1', the unknown
  member, while the customer row is missing).
#}
with orders as (
    select * from {{ ref('stg_orders') }}
),

customers as (
    select customer_id from {{ ref('stg_customers') }}
),

items as (
    select
        order_id,
        count(*)           as item_count,
        sum(price)         as items_revenue,
        sum(freight_value) as freight_total
    from {{ ref('stg_order_items') }}
    group by order_id
),

payments as (
    select
        order_id,
        count(*)           as payment_count,
        sum(payment_value) as payment_total
    from {{ ref('stg_payments') }}
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
    end as is_late
from orders
left join items
    on orders.order_id = items.order_id
left join payments
    on orders.order_id = payments.order_id
left join customers
    on orders.customer_id = customers.customer_id
