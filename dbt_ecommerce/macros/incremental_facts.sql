{#
  Incremental models (the three facts, dim_customers, dim_products): a build after new rows
  rebuilds only the rows those rows touch.

  Every landing row carries `_loaded_at` (staging `loaded_at`), the time the framework last
  wrote it: a new row, a changed one (a merge pipeline rewrites the row) and every row of a
  full refresh get a new one. A fact row keeps, in `loaded_at`, the newest of the rows it was
  built from, so `loaded_since()` (the newest in the table; on Snowflake less a look-back for
  loads that committed late) says which landing rows the table has not seen yet. Each fact
  rebuilds (unique_key, delete+insert; on Snowflake the new rows wait in a transient table,
  dropped after: fakesnow cannot create dbt's temporary relations) the rows whose own row,
  parent row (order, customer, product) or lines changed since, and the rows whose parent or
  lines were deleted since, found by anti-joins on the fact's own keys (fact_orders and
  dim_customers first compare counts: see there); `delete_gone` removes the rows whose source
  row is gone (when the counts say some are).
  Every row also carries `built_at`, the start of the build that wrote it (`build_started_at`):
  a model built from another takes the rows written after its own newest (`built_since()`),
  and the tests read the rows of the newest build only (macros/last_build_rows.sql).
#}

{#
  The start of this dbt invocation (UTC), the same for every row a build writes: a full build
  stamps every row with it, an incremental build the rows it rewrote.
#}
{% macro build_started_at() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#
  The newest landing write the table was built from (`column`: loaded_at). On Snowflake less
  `incremental_lookback_minutes`: another worker's load may commit after a build began, with
  an earlier `_loaded_at`. A DuckDB file has one writer at a time, so no load overlaps a build.
#}
{% macro loaded_since(column='loaded_at') -%}
    {%- set newest = "coalesce(max(" ~ column ~ "), cast('1900-01-01' as " ~ dbt.type_timestamp() ~ "))" -%}
    {%- if target.type == 'snowflake' -%}
    (select {{ dbt.dateadd('minute', -var('incremental_lookback_minutes'), newest) }} from {{ this }})
    {%- else -%}
    (select {{ newest }} from {{ this }})
    {%- endif -%}
{%- endmacro %}

{#
  The last build of the table (its newest `built_at`): a model built from a fact takes the fact
  rows written after it. On Snowflake less the same look-back: the workers that run builds may
  disagree a little about the time.
#}
{% macro built_since() -%}
    {{ loaded_since('built_at') }}
{%- endmacro %}

{#
  Post-hook: remove the rows of `this` whose key is no longer in `source_model`. The table holds
  a row for every source row (`members`: the rows that stand for one; a dimension's unknown
  member stands for none), so it has more of them than the source has rows exactly when some
  source rows are gone: two counts decide whether the anti-join runs at all.
#}
{% macro delete_gone(source_model, keys, members='1 = 1') -%}
    {%- if execute -%}
        {%- set count_extra -%}
            select (select count(*) from {{ this }} where {{ members }})
                 - (select count(*) from {{ ref(source_model) }})
        {%- endset -%}
        {%- if run_query(count_extra).columns[0].values()[0] > 0 %}
    delete from {{ this }} gone
    where {{ members }} and not exists (
        select 1 from {{ ref(source_model) }} as src
        where {% for key in keys %}src.{{ key }} = gone.{{ key }}{% if not loop.last %} and {% endif %}{% endfor %}
    )
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{# The newest of several loaded_at expressions, the non-null ones (Snowflake's greatest() is null if any is). #}
{% macro newest_loaded_at(first, others) -%}
    greatest({{ first }}{% for other in others %}, coalesce({{ other }}, {{ first }}){% endfor %})
{%- endmacro %}
