{{ config(tags=['report', 'orders', 'order_items', 'customers']) }}

{#
  Revenue and orders by purchase month and customer state: one row per month and
  state with at least one sale.
#}
with orders as (
    select
        {{ month_start('fact.purchase_date') }} as month_start_date,
        coalesce(customers.state, {{ empty_label('state') }}) as customer_state,
        case when customers.is_unknown_member then null else customers.customer_unique_id end
            as customer_unique_id,
        fact.has_items,
        fact.items_revenue,
        fact.freight_total
    from {{ ref('fact_orders') }} as fact
    left join {{ ref('dim_customers') }} as customers
        on fact.customer_key = customers.customer_id
    where {{ is_sale('fact.order_status') }}
)

select
    month_start_date,
    customer_state,
    cast(count(*) as {{ dbt.type_bigint() }})                             as orders,
    cast(count(distinct customer_unique_id) as {{ dbt.type_bigint() }})   as customers,
    cast(sum(items_revenue) as decimal(18, 2))                            as revenue,
    cast(sum(freight_total) as decimal(18, 2))                            as freight,
    cast(sum(case when has_items then 1 else 0 end) as {{ dbt.type_bigint() }}) as orders_with_items,
    {{ money_ratio('sum(items_revenue)', 'sum(case when has_items then 1 else 0 end)') }} as average_order_value
from orders
group by month_start_date, customer_state
