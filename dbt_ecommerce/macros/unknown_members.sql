{#
  Unknown members: how the star schema models dirty data instead of refusing it.

  - A fact keeps every source row. Its natural key columns (customer_id, product_id, order_id)
    are the source's values, as they are; beside them a `*_key` column points at the
    dimension: the natural key when the dimension row exists, else the unknown member's key
    `'-1'` (unknown_key()). Every dimension has exactly one unknown member row (key '-1',
    is_unknown_member = true), so a join on `*_key` never loses a fact row.
  - The labels keep two cases apart: "the dimension row is missing" reads
    '(missing customer)' / '(missing product)' (missing_label), "the row exists but this
    attribute is empty" reads '(no state)' / '(no category)' (empty_label).
  - Every build rebuilds the fact rows whose customer or product row was written since
    (macros/incremental_facts.sql), so a dimension row that arrives late (customers loaded one
    run after their orders) is attached to its facts by the next build.
#}

{# The key is var('unknown_member_key'), '-1' unless the project sets it (dbt_project.yml). #}
{% macro unknown_key() -%}
    '{{ var("unknown_member_key", "-1") | replace("'", "''") }}'
{%- endmacro %}

{# `expr` when the dimension row was found (its key column is not null), else the unknown key. #}
{% macro member_key(found_key, expr) -%}
    case when {{ found_key }} is null then {{ unknown_key() }} else {{ expr }} end
{%- endmacro %}

{% macro missing_label(entity) -%}
    '(missing {{ entity }})'
{%- endmacro %}

{% macro empty_label(attribute) -%}
    '(no {{ attribute }})'
{%- endmacro %}

{# A text attribute, NULL when empty or blank (a spreadsheet writes '' for nothing), trimmed of
   spaces, tabs, line breaks and no-break spaces (chr() and trim(x, chars): DuckDB and Snowflake). #}
{% macro blank_to_null(expr) -%}
    nullif(trim({{ expr }}, ' ' || chr(9) || chr(10) || chr(13) || chr(160)), '')
{%- endmacro %}

{# A product's category: the seed's English name, else the source's name, else '(no category)'. #}
{% macro category(english, source_name) -%}
    coalesce({{ english }}, {{ source_name }}, {{ empty_label('category') }})
{%- endmacro %}
