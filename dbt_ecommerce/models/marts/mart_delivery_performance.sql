{{ config(tags=['report', 'orders']) }}

{#
  Delivery time and lateness against the estimate, by purchase month: one row per
  month with at least one delivered order that had an estimate (fact_orders.is_late
  not null). Late = delivered on a later calendar day than estimated.
#}
with delivered as (
    select
        {{ month_start('purchase_date') }} as month_start_date,
        days_to_deliver,
        days_late,
        is_late
    from {{ ref('fact_orders') }}
    where is_late is not null
)

select
    month_start_date,
    cast(count(*) as {{ dbt.type_bigint() }})                                    as delivered_orders,
    cast(sum(case when is_late then 0 else 1 end) as {{ dbt.type_bigint() }})    as on_time_orders,
    cast(sum(case when is_late then 1 else 0 end) as {{ dbt.type_bigint() }})    as late_orders,
    {{ ratio('sum(case when is_late then 1 else 0 end)', 'count(*)') }}          as late_share,
    cast(avg(days_to_deliver) as double)                                         as avg_days_to_deliver,
    cast(avg(days_late) as double)                                               as avg_days_vs_estimate,
    cast(avg(case when is_late then days_late end) as double)                    as avg_days_late_when_late
from delivered
group by month_start_date
