{{ config(tags=['payments', 'orders']) }}

{# One row per payment (order_id + payment_sequential). #}
with payments as (
    select * from {{ ref('stg_payments') }}
),

orders as (
    select order_id, customer_id, purchased_at from {{ ref('stg_orders') }}
)

select
    payments.order_id,
    payments.payment_sequential,
    orders.customer_id,
    {{ date_key('orders.purchased_at') }} as purchase_date_key,
    payments.payment_type,
    payments.installments,
    payments.payment_value
from payments
left join orders
    on payments.order_id = orders.order_id
