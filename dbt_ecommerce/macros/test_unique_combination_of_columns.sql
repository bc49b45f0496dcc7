{#
  Generic test: the combination of the given columns is unique (a grain test,
  written here because dbt_utils is not available).
  Usage in YAML:
    data_tests:
      - unique_combination_of_columns:
          arguments:
            combination_of_columns: [order_id, order_item_id]
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
    {%- set columns_csv = combination_of_columns | join(', ') %}
    select {{ columns_csv }}, count(*) as n_records
    from {{ model }}
    group by {{ columns_csv }}
    having count(*) > 1
{% endtest %}
