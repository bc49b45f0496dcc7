{{ config(tags=['customers', 'orders']) }}

{# One row per customer_id, with the customer's order history summary. #}
with customers as (
    select * from {{ ref('stg_customers') }}
),

order_summary as (
    select
        customer_id,
        min(purchased_at) as first_order_at,
        max(purchased_at) as last_order_at,
        count(*)          as order_count
    from {{ ref('stg_orders') }}
    group by customer_id
)

select
    customers.customer_id,
    customers.customer_unique_id,
    customers.zip_code_prefix,
    customers.city,
    customers.state,
    cast(order_summary.first_order_at as date) as first_order_date,
    cast(order_summary.last_order_at as date)  as last_order_date,
    coalesce(order_summary.order_count, 0)     as order_count,
    customers.updated_at
from customers
left join order_summary
    on customers.customer_id = order_summary.customer_id
