{#
  Generic tests for the reporting marts (dbt_utils is not available here).

  expression_is_true: every row satisfies a boolean SQL expression.
    data_tests:
      - expression_is_true:
          arguments:
            expression: "late_orders <= delivered_orders"

  sum_matches: the column's total equals another relation's column total
  (optionally filtered), so an aggregate mart neither loses nor double counts.
  Totals are compared rounded to `decimals` (default 2: cents), which also keeps
  the test exact where an emulator (fakesnow) sums decimals as floats.
    columns:
      - name: revenue
        data_tests:
          - sum_matches:
              arguments:
                to: ref('fact_orders')
                field: items_revenue
                compare_where: "order_status not in ('canceled', 'unavailable')"
#}
{% test expression_is_true(model, expression) %}
    select *
    from {{ model }}
    where not ({{ expression }})
{% endtest %}


{% test sum_matches(model, column_name, to, field, compare_where=none, decimals=2) %}
    with model_total as (
        select round(sum({{ column_name }}), {{ decimals }}) as total from {{ model }}
    ),

    compare_total as (
        select round(sum({{ field }}), {{ decimals }}) as total
        from {{ to }}
        {%- if compare_where %}
        where {{ compare_where }}
        {%- endif %}
    )

    select model_total.total as model_total, compare_total.total as compare_total
    from model_total
    cross join compare_total
    where coalesce(model_total.total, 0) <> coalesce(compare_total.total, 0)
{% endtest %}
