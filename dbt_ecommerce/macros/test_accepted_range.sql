{#
  Generic test: every non-null value lies within [min_value, max_value] (either bound may be
  omitted). Generated into models/sources.yml from a pipeline column's `min`/`max`
  (`framework dbt-sources`); written here because dbt_utils is not available.
  Usage in YAML:
    data_tests:
      - accepted_range:
          arguments:
            min_value: 0
            max_value: 100000
#}
{% test accepted_range(model, column_name, min_value=none, max_value=none) %}
    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} is not null
      and (
        {%- if min_value is not none %} {{ column_name }} < {{ _accepted_range_literal(min_value) }}{% endif %}
        {%- if min_value is not none and max_value is not none %} or{% endif %}
        {%- if max_value is not none %} {{ column_name }} > {{ _accepted_range_literal(max_value) }}{% endif %}
        {%- if min_value is none and max_value is none %} false{% endif %}
      )
{% endtest %}

{% macro _accepted_range_literal(value) -%}
    {%- if value is string -%}'{{ value }}'{%- else -%}{{ value }}{%- endif -%}
{%- endmacro %}
