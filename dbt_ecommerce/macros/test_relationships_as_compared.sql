{#
  Generic test: dbt's `relationships`, comparing as the source does. Where trailing spaces do
  not count there (PostgreSQL's char(n), a MySQL or MariaDB PAD SPACE collation) or case does
  not (a `_ci` collation), a reference 'eu ' meets its key 'EU'. `framework init --all` writes
  it for such a reference, and its fact's join compares alike.
  Usage in YAML:
    data_tests:
      - relationships_as_compared:
          arguments:
            to: ref('stg_region')
            field: code
            ignore_trailing_spaces: true
            ignore_case: true
#}
{% macro _as_compared(column, ignore_trailing_spaces, ignore_case) -%}
    {%- set text = "cast(" ~ column ~ " as " ~ dbt.type_string() ~ ")" -%}
    {%- if ignore_trailing_spaces %}{% set text = "rtrim(" ~ text ~ ", ' ')" %}{% endif -%}
    {%- if ignore_case %}{% set text = "lower(" ~ text ~ ")" %}{% endif -%}
    {{ text }}
{%- endmacro %}

{% test relationships_as_compared(model, column_name, to, field, ignore_trailing_spaces=false,
                                  ignore_case=false) %}
    select child.{{ column_name }}
    from {{ model }} as child
    left join {{ to }} as parent
        on {{ _as_compared('child.' ~ column_name, ignore_trailing_spaces, ignore_case) }}
         = {{ _as_compared('parent.' ~ field, ignore_trailing_spaces, ignore_case) }}
    where child.{{ column_name }} is not null
      and parent.{{ field }} is null
{% endtest %}
