{{ config(tags=['report', 'orders', 'customers']) }}

{#
  Monthly cohorts: customers (people, customer_unique_id) grouped by the month of
  their first sale, and how many of them buy again 1, 2, ... months later. One row
  per cohort month and month offset with at least one active customer.
#}
with firsts as (
    select customer_unique_id, min(order_month) as cohort_month
    from {{ ref('customer_sales') }}
    group by customer_unique_id
),

cohort_sizes as (
    select cohort_month, count(*) as cohort_size
    from firsts
    group by cohort_month
),

activity as (
    select distinct
        firsts.cohort_month,
        sales.customer_unique_id,
        {{ dbt.datediff('firsts.cohort_month', 'sales.order_month', 'month') }} as months_since_first_order
    from {{ ref('customer_sales') }} as sales
    inner join firsts
        on sales.customer_unique_id = firsts.customer_unique_id
)

select
    activity.cohort_month,
    cast(activity.months_since_first_order as {{ dbt.type_int() }})    as months_since_first_order,
    cast(cohort_sizes.cohort_size as {{ dbt.type_bigint() }})          as cohort_size,
    cast(count(*) as {{ dbt.type_bigint() }})                          as active_customers,
    {{ ratio('count(*)', 'cohort_sizes.cohort_size') }}                as retention_rate
from activity
inner join cohort_sizes
    on activity.cohort_month = cohort_sizes.cohort_month
group by activity.cohort_month, activity.months_since_first_order, cohort_sizes.cohort_size
