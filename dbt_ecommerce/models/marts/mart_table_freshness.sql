{# Built by every pipeline's `stg_<table>+` selection (it reads all five staging views). #}
{{ config(tags=['data_quality']) }}

{#
  Data quality: one row per landing table the marts read, with its rows, its newest cursor
  value (updated_at in the source) and the time the framework last wrote a row of it.
#}
{% set tables = ['customers', 'products', 'orders', 'order_items', 'payments'] %}
{% for table in tables %}
select
    '{{ table }}'                                      as table_name,
    cast(count(*) as {{ dbt.type_bigint() }})          as total_rows,
    max(updated_at)                                    as newest_cursor,
    max(loaded_at)                                     as last_loaded_at
from {{ ref('stg_' ~ table) }}
{% if not loop.last %}union all{% endif %}
{% endfor %}
