{{ config(tags=['report', 'orders']) }}

{#
  Distribution of delivered orders by days between the estimated and the actual
  delivery date (fact_orders.days_late; negative = early): one row per bucket,
  every bucket present (zero when empty).
#}
with buckets as (
    select
        1 as bucket_order, '15+ days early' as bucket,
        cast(null as {{ dbt.type_int() }}) as min_days_late, cast(-15 as {{ dbt.type_int() }}) as max_days_late
    union all select 2, '8-14 days early', -14, -8
    union all select 3, '1-7 days early', -7, -1
    union all select 4, 'on the day', 0, 0
    union all select 5, '1-3 days late', 1, 3
    union all select 6, '4-7 days late', 4, 7
    union all select 7, '8-14 days late', 8, 14
    union all select 8, '15+ days late', 15, null
),

delivered as (
    select days_late
    from {{ ref('fact_orders') }}
    where is_late is not null
),

counted as (
    select
        buckets.bucket_order,
        count(delivered.days_late) as delivered_orders
    from buckets
    left join delivered
        on (buckets.min_days_late is null or delivered.days_late >= buckets.min_days_late)
        and (buckets.max_days_late is null or delivered.days_late <= buckets.max_days_late)
    group by buckets.bucket_order
)

select
    cast(buckets.bucket_order as {{ dbt.type_int() }})                   as bucket_order,
    cast(buckets.bucket as {{ dbt.type_string() }})                      as bucket,
    buckets.min_days_late,
    buckets.max_days_late,
    case when coalesce(buckets.min_days_late, 0) > 0 then true else false end as is_late,
    cast(counted.delivered_orders as {{ dbt.type_bigint() }})            as delivered_orders,
    {{ ratio('counted.delivered_orders', 'sum(counted.delivered_orders) over ()') }} as share_of_delivered
from buckets
inner join counted
    on buckets.bucket_order = counted.bucket_order
