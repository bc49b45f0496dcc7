{#
  Shared definitions of the reporting marts (mart_*), so every mart counts the
  same way. Plain SQL and dbt cross-database macros: DuckDB and Snowflake.
#}

{#
  is_sale(status): true for an order that counts as a sale. Canceled and
  unavailable orders never shipped, so they add no orders, revenue, payments or
  customers to the reporting marts (mart_revenue_monthly counts them apart as
  canceled_orders).
#}
{% macro is_sale(status) -%}
    ({{ status }} not in ('canceled', 'unavailable'))
{%- endmacro %}


{# month_start(expr): first day (type date) of the month of a date or timestamp. #}
{% macro month_start(expr) -%}
    cast({{ dbt.date_trunc('month', expr) }} as date)
{%- endmacro %}


{#
  ratio(numerator, denominator): numerator / denominator as a 64-bit float
  (`double` on both warehouses; dbt.type_float() is 32-bit on DuckDB), null when
  the denominator is 0 or null.
#}
{% macro ratio(numerator, denominator) -%}
    (cast({{ numerator }} as double) / nullif({{ denominator }}, 0))
{%- endmacro %}


{# money_ratio(amount, count): amount / count rounded to cents (decimal(14, 2)), null when count is 0. #}
{% macro money_ratio(amount, count) -%}
    cast({{ amount }} / nullif({{ count }}, 0) as decimal(14, 2))
{%- endmacro %}
