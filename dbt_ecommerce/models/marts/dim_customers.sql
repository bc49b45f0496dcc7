{{ config(
    tags=['customers', 'orders'],
    materialized='incremental',
    unique_key='customer_id',
    incremental_strategy='delete+insert',
    tmp_relation_type='transient',
    on_schema_change='fail',
    post_hook="{{ delete_gone('stg_customers', ['customer_id'], 'not is_unknown_member') }}",
) }}

{#
  One row per customer_id, with the customer's order history summary (from fact_orders, whose
  customer_key is the customer_id while the customer row exists), plus the unknown member
  (customer_id '-1', see macros/unknown_members.sql) standing for every order whose customer
  row is missing: its order_count is the number of those orders.
  Incremental (macros/incremental_facts.sql): a build rebuilds the customers whose row was
  written since the last one, those with an order fact_orders wrote since (built_at), and the
  unknown member; `delete_gone` removes the customers deleted since.
  Orders deleted since (or moved to another customer): a customer nothing rewrote can only
  have lost orders, so the stored order counts of those customers add up to their orders in
  fact_orders exactly when none was; otherwise the build recounts every customer.
#}
{% if is_incremental() %}
{% set changed_customers %}
    select customer_id from {{ ref('stg_customers') }} where loaded_at > {{ loaded_since() }}
    union
    select customer_key from {{ ref('fact_orders') }} where built_at > {{ built_since() }}
    union
    select {{ unknown_key() }}
{% endset %}
{% set counts_differ %}
    with changed as ({{ changed_customers }})

    select
        (select coalesce(sum(order_count), 0) from {{ this }} as dim
         where not exists (select 1 from changed where changed.customer_id = dim.customer_id))
        - (select count(*) from {{ ref('fact_orders') }} as orders
           where not exists (select 1 from changed where changed.customer_id = orders.customer_key))
{% endset %}
{% set only_changed = not execute or run_query(counts_differ).columns[0].values()[0] == 0 %}
{% endif %}
with
{% if is_incremental() and only_changed %}
changed as (
    {{ changed_customers }}
),

{% endif %}
customers as (
    select * from {{ ref('stg_customers') }}
    {% if is_incremental() and only_changed %}
    where customer_id in (select customer_id from changed)
    {% endif %}
),

order_summary as (
    select
        customer_key,
        min(purchase_date) as first_order_date,
        max(purchase_date) as last_order_date,
        count(*)           as order_count
    from {{ ref('fact_orders') }}
    where customer_key <> {{ unknown_key() }}
    {% if is_incremental() and only_changed %}
      and customer_key in (select customer_id from changed)
    {% endif %}
    group by customer_key
),

orphan_summary as (
    select
        min(purchase_date) as first_order_date,
        max(purchase_date) as last_order_date,
        count(*)           as order_count
    from {{ ref('fact_orders') }}
    where customer_key = {{ unknown_key() }}
)

select
    customers.customer_id,
    customers.customer_unique_id,
    customers.zip_code_prefix,
    customers.city,
    customers.state,
    cast(order_summary.first_order_date as date) as first_order_date,
    cast(order_summary.last_order_date as date)  as last_order_date,
    coalesce(order_summary.order_count, 0)       as order_count,
    customers.updated_at,
    false                                        as is_unknown_member,
    customers.loaded_at,
    {{ build_started_at() }}                     as built_at
from customers
left join order_summary
    on customers.customer_id = order_summary.customer_key

union all

select
    {{ unknown_key() }}                         as customer_id,
    {{ unknown_key() }}                         as customer_unique_id,
    cast(null as {{ dbt.type_string() }})       as zip_code_prefix,
    {{ missing_label('customer') }}             as city,
    {{ missing_label('customer') }}             as state,
    cast(first_order_date as date)              as first_order_date,
    cast(last_order_date as date)               as last_order_date,
    order_count,
    cast(null as {{ dbt.type_timestamp() }})    as updated_at,
    true                                        as is_unknown_member,
    cast(null as {{ dbt.type_timestamp() }})    as loaded_at,
    {{ build_started_at() }}                    as built_at
from orphan_summary
