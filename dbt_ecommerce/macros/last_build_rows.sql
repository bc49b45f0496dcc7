{#
  Tests of an incremental table read the rows its newest build wrote, not the whole table.

  A test opts in with `config: {where: "__last_build_rows__"}` (models/marts/schema.yml); in
  `dbt build` the placeholder becomes `built_at = (the table's newest built_at)`. A full build
  (the first one, or `--full-refresh`) stamps every row with the same `built_at`, so it tests
  them all; an incremental build tests the rows it rewrote. That is enough: rows no build
  rewrote passed these tests when they were written, and the facts rebuild every row whose
  parent (order, customer, product) changed or went away, so its relationships are re-tested
  then. Uniqueness holds by construction: delete+insert on the unique key removes every row of
  a rewritten key before inserting the new batch, so only a duplicate within the batch (a model
  bug) could break it, and the batch is tested.
  `dbt test` has no build: it reads the whole table.
  Everything else is dbt's own get_where_subquery (a `where` config applies as written).
#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where == '__last_build_rows__' -%}
        {%- if flags.WHICH == 'build' -%}
            {%- set filtered -%}
                (select * from {{ relation }} where built_at = (select max(built_at) from {{ relation }})) dbt_subquery
            {%- endset -%}
            {%- do return(filtered) -%}
        {%- endif -%}
        {%- do return(relation) -%}
    {%- endif -%}
    {%- do return(dbt.default__get_where_subquery(relation)) -%}
{%- endmacro %}
