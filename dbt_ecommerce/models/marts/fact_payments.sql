{{ config(tags=['payments', 'orders']) }}

{#
  One row per payment (order_id + payment_sequential): every payment of the source, those
  whose order row is missing included (has_order false, customer_key '-1').
#}
with payments as (
    select * from {{ ref('stg_payments') }}
),

orders as (
    select order_id, customer_id, purchased_at from {{ ref('stg_orders') }}
),

customers as (
    select customer_id from {{ ref('stg_customers') }}
)

select
    payments.order_id,
    payments.payment_sequential,
    orders.customer_id,
    {{ member_key('customers.customer_id', 'orders.customer_id') }} as customer_key,
    case when orders.order_id is null then false else true end as has_order,
    {{ date_key('orders.purchased_at') }} as purchase_date_key,
    payments.payment_type,
    payments.installments,
    payments.payment_value
from payments
left join orders
    on payments.order_id = orders.order_id
left join customers
    on orders.customer_id = customers.customer_id
