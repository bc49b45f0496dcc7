{{ config(tags=['report', 'orders', 'customers']) }}

{#
  Repeat customers by cohort (month of a person's first sale): how many people
  placed a second sale at any time since. One row per cohort month.
#}
with people as (
    select
        customer_unique_id,
        min(order_month) as cohort_month,
        count(*)         as orders
    from {{ ref('customer_sales') }}
    group by customer_unique_id
)

select
    cohort_month,
    cast(count(*) as {{ dbt.type_bigint() }})                                      as new_customers,
    cast(sum(case when orders >= 2 then 1 else 0 end) as {{ dbt.type_bigint() }}) as repeat_customers,
    {{ ratio('sum(case when orders >= 2 then 1 else 0 end)', 'count(*)') }}        as repeat_rate,
    cast(sum(orders) as {{ dbt.type_bigint() }})                                   as orders,
    {{ ratio('sum(orders)', 'count(*)') }}                                         as orders_per_customer
from people
group by cohort_month
