{#
  date_key(expr): integer YYYYMMDD key of a date/timestamp expression, used to
  join facts to dim_dates. Plain extract(): works on DuckDB and Snowflake.
#}
{% macro date_key(expr) -%}
    cast(
        extract(year from {{ expr }}) * 10000
        + extract(month from {{ expr }}) * 100
        + extract(day from {{ expr }})
        as {{ dbt.type_int() }}
    )
{%- endmacro %}
