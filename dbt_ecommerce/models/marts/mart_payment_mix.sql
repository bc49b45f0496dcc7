{{ config(tags=['report', 'payments', 'orders']) }}

{# Payments of sales by payment type and number of instalments: one row per combination used. #}
with payments as (
    select
        coalesce(payments.payment_type, 'unknown') as payment_type,
        coalesce(payments.installments, 0)         as installments,
        payments.order_id,
        payments.payment_value                     as amount
    from {{ ref('fact_payments') }} as payments
    inner join {{ ref('fact_orders') }} as orders
        on payments.order_id = orders.order_id
    where {{ is_sale('orders.order_status') }}
)

select
    payment_type,
    cast(installments as {{ dbt.type_int() }})                   as installments,
    cast(count(*) as {{ dbt.type_bigint() }})                    as payments,
    cast(count(distinct order_id) as {{ dbt.type_bigint() }})    as orders,
    cast(sum(amount) as decimal(18, 2))                          as payment_value,
    {{ money_ratio('sum(amount)', 'count(*)') }}                 as average_payment_value,
    {{ ratio('sum(amount)', 'sum(sum(amount)) over ()') }}       as share_of_payment_value
from payments
group by payment_type, installments
