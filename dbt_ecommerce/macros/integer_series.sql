{#
  integer_series(upper_bound): a query returning one column `n` with the
  integers 0 .. upper_bound - 1, built from cross joins of a two-row table
  (plain ANSI SQL: works on DuckDB and Snowflake; no dbt_utils needed).
#}
{% macro integer_series(upper_bound) -%}
    {%- set upper_bound = upper_bound | int -%}
    {%- if upper_bound <= 0 -%}
        {{ exceptions.raise_compiler_error("integer_series: upper_bound must be positive") }}
    {%- endif -%}
    {%- set ns = namespace(bits=1) -%}
    {%- for _ in range(1, 64) -%}
        {%- if 2 ** ns.bits < upper_bound -%}{%- set ns.bits = ns.bits + 1 -%}{%- endif -%}
    {%- endfor -%}
    select n
    from (
        select
            {% for i in range(ns.bits) -%}
            b{{ i }}.digit * {{ 2 ** i }}{% if not loop.last %} + {% endif %}
            {%- endfor %} as n
        from
            {% for i in range(ns.bits) -%}
            (select 0 as digit union all select 1 as digit) as b{{ i }}{% if not loop.last %}
            cross join
            {% endif %}
            {%- endfor %}
    ) as binary_digits
    where n < {{ upper_bound }}
{%- endmacro %}


{#
  date_spine_between(start_date, end_date, max_days, bounds_from=none): one row
  per day, column `date_day` (type date), from start_date to end_date inclusive.
  start_date and end_date are SQL expressions evaluated at run time; they may
  reference columns of `bounds_from` (a one-row relation or CTE name, cross
  joined), e.g. date_spine_between('b.start_date', 'b.end_date', 36600, 'bounds as b').
  max_days caps the span. Cross-database through dbt.dateadd / dbt.datediff.
#}
{% macro date_spine_between(start_date, end_date, max_days, bounds_from=none) -%}
    select
        cast({{ dbt.dateadd('day', 'series.n', start_date) }} as date) as date_day
    from ({{ integer_series(max_days) }}) as series
    {%- if bounds_from is not none %}
    cross join {{ bounds_from }}
    {%- endif %}
    where series.n <= {{ dbt.datediff(start_date, end_date, 'day') }}
{%- endmacro %}
