{{ config(tags=['report', 'orders', 'order_items', 'customers']) }}

{#
  Revenue and orders by purchase month: one row per calendar month from the
  first to the last purchase month, months without orders included (zeros).
  Sales only (see macro is_sale); canceled and unavailable orders are counted
  apart in canceled_orders.
#}
with orders as (
    select
        {{ month_start('fact.purchase_date') }} as month_start_date,
        {{ is_sale('fact.order_status') }}    as is_sale,
        fact.item_count,
        fact.has_items,
        fact.items_revenue,
        fact.freight_total,
        customers.customer_unique_id
    from {{ ref('fact_orders') }} as fact
    left join {{ ref('dim_customers') }} as customers
        on fact.customer_id = customers.customer_id
),

bounds as (
    select min(month_start_date) as first_month, max(month_start_date) as last_month
    from orders
),

{# Months of their own, not dim_dates' (which may skip the years between a sentinel date
   and the real ones): a thousand years from the first, and every month an order holds. #}
months as (
    select cast({{ dbt.dateadd('month', 'series.n', 'bounds.first_month') }} as date) as month_start_date
    from ({{ integer_series(12000) }}) as series
    cross join bounds
    where series.n <= {{ dbt.datediff('bounds.first_month', 'bounds.last_month', 'month') }}
    union
    select month_start_date from orders where month_start_date is not null
),

monthly as (
    select
        month_start_date,
        sum(case when is_sale then 1 else 0 end)                      as orders,
        sum(case when is_sale then 0 else 1 end)                      as canceled_orders,
        sum(case when is_sale and has_items then 1 else 0 end)        as orders_with_items,
        count(distinct case when is_sale then customer_unique_id end) as customers,
        sum(case when is_sale then item_count else 0 end)             as items,
        sum(case when is_sale then items_revenue else 0 end)          as revenue,
        sum(case when is_sale then freight_total else 0 end)          as freight
    from orders
    group by month_start_date
)

select
    months.month_start_date,
    cast(extract(year from months.month_start_date) as {{ dbt.type_int() }})  as year_number,
    cast(extract(month from months.month_start_date) as {{ dbt.type_int() }}) as month_of_year,
    cast(coalesce(monthly.orders, 0) as {{ dbt.type_bigint() }})              as orders,
    cast(coalesce(monthly.canceled_orders, 0) as {{ dbt.type_bigint() }})     as canceled_orders,
    cast(coalesce(monthly.orders_with_items, 0) as {{ dbt.type_bigint() }})   as orders_with_items,
    cast(coalesce(monthly.customers, 0) as {{ dbt.type_bigint() }})           as customers,
    cast(coalesce(monthly.items, 0) as {{ dbt.type_bigint() }})               as items,
    cast(coalesce(monthly.revenue, 0) as decimal(18, 2))                      as revenue,
    cast(coalesce(monthly.freight, 0) as decimal(18, 2))                      as freight,
    cast(coalesce(monthly.revenue, 0) + coalesce(monthly.freight, 0) as decimal(18, 2)) as revenue_with_freight,
    {# over the orders that have items: an order whose lines are missing has no value yet #}
    {{ money_ratio('monthly.revenue', 'monthly.orders_with_items') }}         as average_order_value
from months
left join monthly
    on months.month_start_date = monthly.month_start_date
