{#
  Generic test: dbt's `relationships`, with trailing spaces ignored on both sides, as the source
  compares a padded column (PostgreSQL's char(n), a MySQL or MariaDB PAD SPACE collation): there
  a reference 'EU ' meets its key 'EU'. `framework init --all` writes it for such a reference.
  Usage in YAML:
    data_tests:
      - relationships_ignoring_trailing_spaces:
          arguments:
            to: ref('stg_region')
            field: code
#}
{% test relationships_ignoring_trailing_spaces(model, column_name, to, field) %}
    select child.{{ column_name }}
    from {{ model }} as child
    left join {{ to }} as parent
        on rtrim(cast(child.{{ column_name }} as {{ dbt.type_string() }}), ' ')
         = rtrim(cast(parent.{{ field }} as {{ dbt.type_string() }}), ' ')
    where child.{{ column_name }} is not null
      and parent.{{ field }} is null
{% endtest %}
