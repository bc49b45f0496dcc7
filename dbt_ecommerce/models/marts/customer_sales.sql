{{ config(materialized='ephemeral', tags=['report', 'orders', 'customers']) }}

{#
  Ephemeral (no table): one row per sale with the person behind it
  (customer_unique_id) and the purchase month. Shared by mart_customer_cohorts
  and mart_repeat_customers. A sale whose customer row is missing has no person yet: it
  joins no customer here (the unknown member is no person) until the customer row arrives.
#}
select
    customers.customer_unique_id,
    orders.order_id,
    {{ month_start('orders.purchase_date') }} as order_month
from {{ ref('fact_orders') }} as orders
inner join {{ ref('dim_customers') }} as customers
    on orders.customer_key = customers.customer_id
where not customers.is_unknown_member
  and {{ is_sale('orders.order_status') }}
