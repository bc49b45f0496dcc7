{{ config(tags=['customers', 'orders']) }}

{#
  One row per customer_id, with the customer's order history summary, plus the unknown member
  (customer_id '-1', see macros/unknown_members.sql) standing for every order whose customer
  row is missing: its order_count is the number of those orders.
#}
with customers as (
    select * from {{ ref('stg_customers') }}
),

orders as (
    select
        orders.customer_id,
        orders.purchased_at,
        case when customers.customer_id is null then true else false end as is_orphan
    from {{ ref('stg_orders') }} as orders
    left join customers
        on orders.customer_id = customers.customer_id
),

order_summary as (
    select
        customer_id,
        min(purchased_at) as first_order_at,
        max(purchased_at) as last_order_at,
        count(*)          as order_count
    from orders
    where not is_orphan
    group by customer_id
),

orphan_summary as (
    select
        min(purchased_at) as first_order_at,
        max(purchased_at) as last_order_at,
        count(*)          as order_count
    from orders
    where is_orphan
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
    customers.updated_at,
    false                                      as is_unknown_member
from customers
left join order_summary
    on customers.customer_id = order_summary.customer_id

union all

select
    {{ unknown_key() }}                         as customer_id,
    {{ unknown_key() }}                         as customer_unique_id,
    cast(null as {{ dbt.type_string() }})       as zip_code_prefix,
    {{ missing_label('customer') }}             as city,
    {{ missing_label('customer') }}             as state,
    cast(first_order_at as date)                as first_order_date,
    cast(last_order_at as date)                 as last_order_date,
    order_count,
    cast(null as {{ dbt.type_timestamp() }})    as updated_at,
    true                                        as is_unknown_member
from orphan_summary
