{{ config(
    tags=['payments', 'orders'],
    materialized='incremental',
    unique_key=['order_id', 'payment_sequential'],
    incremental_strategy='delete+insert',
    tmp_relation_type='transient',
    on_schema_change='fail',
    post_hook="{{ delete_gone('stg_payments', ['order_id', 'payment_sequential']) }}",
) }}

{#
  One row per payment (order_id + payment_sequential): every payment of the source, those
  whose order row is missing included (has_order false, customer_key '-1').
  Incremental (macros/incremental_facts.sql): a build rebuilds the payments whose row, order
  or customer was written since the last one, and those whose order or customer was deleted
  since.
#}
with
{% if is_incremental() %}
changed_orders as (
    select order_id from {{ ref('stg_orders') }} where loaded_at > {{ loaded_since() }}
    union
    select orders.order_id
    from {{ ref('stg_orders') }} as orders
    inner join {{ ref('stg_customers') }} as customers
        on orders.customer_id = customers.customer_id
    where customers.loaded_at > {{ loaded_since() }}
),

changed as (
    select order_id, payment_sequential from {{ ref('stg_payments') }}
    where loaded_at > {{ loaded_since() }}
       or order_id in (select order_id from changed_orders)
    union
    {# deleted since: the order or customer row (back to the unknown member) #}
    select fact.order_id, fact.payment_sequential
    from {{ this }} as fact
    left join {{ ref('stg_orders') }} as orders
        on fact.order_id = orders.order_id
    left join {{ ref('stg_customers') }} as customers
        on fact.customer_key = customers.customer_id
    where (fact.has_order and orders.order_id is null)
       or (fact.customer_key <> {{ unknown_key() }} and customers.customer_id is null)
),

{% endif %}
payments as (
    select rows.* from {{ ref('stg_payments') }} as rows
    {% if is_incremental() %}
    inner join changed
        on rows.order_id = changed.order_id and rows.payment_sequential = changed.payment_sequential
    {% endif %}
),

orders as (
    select order_id, customer_id, purchased_at, loaded_at from {{ ref('stg_orders') }}
),

customers as (
    select customer_id, loaded_at from {{ ref('stg_customers') }}
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
    payments.payment_value,
    {# the newest landing write this row is built from (incremental builds start after it) #}
    {{ newest_loaded_at('payments.loaded_at', ['orders.loaded_at', 'customers.loaded_at']) }} as loaded_at,
    {# the build that wrote this row: tests read the newest build's rows (macros/last_build_rows.sql) #}
    {{ build_started_at() }} as built_at
from payments
left join orders
    on payments.order_id = orders.order_id
left join customers
    on orders.customer_id = customers.customer_id
