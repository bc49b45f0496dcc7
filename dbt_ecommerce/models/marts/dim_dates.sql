{{ config(tags=['orders']) }}

{#
  One row per calendar day from the first purchase date to the last date any
  order refers to (purchase, approval, carrier hand-over, delivery, estimated
  delivery), at most dim_dates_max_days of them (around the median date when the
  dates span more), and every date an order holds beyond. Built with the
  date_spine_between macro (cross-database).
#}
with order_dates as (
    select cast(purchased_at as date) as d from {{ ref('stg_orders') }}
    union all
    select cast(approved_at as date) from {{ ref('stg_orders') }}
    union all
    select cast(delivered_to_carrier_at as date) from {{ ref('stg_orders') }}
    union all
    select cast(delivered_at as date) from {{ ref('stg_orders') }}
    union all
    select cast(estimated_delivery_at as date) from {{ ref('stg_orders') }}
),

{# Where the spine runs: from the first to the last date when they are at most
   dim_dates_max_days apart. Further apart, a sentinel another program wrote (1900-01-01,
   9999-12-31) stretches the span: the spine then runs as far around the median date as the
   cap allows, and the dates outside it (the sentinels) get their own rows below. The median
   of the purchase dates: a sentinel for "not delivered yet" may fill half a delivery column. #}
purchases as (
    select median({{ dbt.datediff("cast('1900-01-01' as date)", 'cast(purchased_at as date)', 'day') }}) as median_day
    from {{ ref('stg_orders') }}
),

dated as (
    select min(d) as first_date, max(d) as last_date
    from order_dates
    where d is not null
),

bounds as (
    select
        case when {{ dbt.datediff('first_date', 'last_date', 'day') }} <= {{ var('dim_dates_max_days') }}
             then first_date
             else greatest(first_date, coalesce(cast({{ dbt.dateadd('day', 'cast(median_day as ' ~ dbt.type_int() ~ ') - ' ~ (var('dim_dates_max_days') // 2), "cast('1900-01-01' as date)") }} as date), first_date))
        end as start_date,
        last_date as end_date
    from dated cross join purchases
),

spine as (
    {{ date_spine_between('bounds.start_date', 'bounds.end_date', var('dim_dates_max_days'), 'bounds') }}
),

days as (
    select date_day from spine
    union
    select d from order_dates where d is not null
),

parts as (
    select
        date_day,
        cast(extract(year from date_day) as {{ dbt.type_int() }})    as year_number,
        cast(extract(quarter from date_day) as {{ dbt.type_int() }}) as quarter_of_year,
        cast(extract(month from date_day) as {{ dbt.type_int() }})   as month_of_year,
        cast(extract(day from date_day) as {{ dbt.type_int() }})     as day_of_month,
        {# ISO day of week (Monday = 1) from a known Monday; independent of session week
           settings. `%` keeps the sign of a date before it: shifted into 0..6 first. #}
        cast(((({{ dbt.datediff("cast('1900-01-01' as date)", 'date_day', 'day') }}) % 7) + 7) % 7 + 1 as {{ dbt.type_int() }}) as day_of_week_iso
    from days
)

select
    {{ date_key('date_day') }} as date_key,
    date_day,
    year_number,
    quarter_of_year,
    month_of_year,
    case month_of_year
        when 1 then 'January' when 2 then 'February' when 3 then 'March'
        when 4 then 'April' when 5 then 'May' when 6 then 'June'
        when 7 then 'July' when 8 then 'August' when 9 then 'September'
        when 10 then 'October' when 11 then 'November' when 12 then 'December'
    end as month_name,
    day_of_month,
    day_of_week_iso,
    case day_of_week_iso
        when 1 then 'Monday' when 2 then 'Tuesday' when 3 then 'Wednesday'
        when 4 then 'Thursday' when 5 then 'Friday' when 6 then 'Saturday'
        when 7 then 'Sunday'
    end as day_name,
    case when day_of_week_iso in (6, 7) then true else false end as is_weekend,
    cast({{ dbt.date_trunc('month', 'date_day') }} as date) as month_start_date
from parts
