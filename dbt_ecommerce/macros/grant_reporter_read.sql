{#- Read-only access for the reporting role (Power BI) on the marts schema, Snowflake only.
    The role itself is created once by an administrator (CREATE ROLE needs SECURITYADMIN,
    which the loader must not hold). An empty FRAMEWORK_REPORTER_ROLE turns the grants off
    (fakesnow, used in the tests, cannot run GRANT). -#}
{% macro grant_reporter_read() %}
  {%- set role = env_var('FRAMEWORK_REPORTER_ROLE', var('reporter_role')) -%}
  {%- if target.type == 'snowflake' and execute and role -%}
    {%- set schema = target.database ~ '.' ~ generate_schema_name('marts', none) -%}
    grant usage on database {{ target.database }} to role {{ role }};
    grant usage on schema {{ schema }} to role {{ role }};
    grant select on all tables in schema {{ schema }} to role {{ role }};
    grant select on all views in schema {{ schema }} to role {{ role }};
    grant select on future tables in schema {{ schema }} to role {{ role }};
    grant select on future views in schema {{ schema }} to role {{ role }};
  {%- else -%}
    select 1
  {%- endif -%}
{% endmacro %}
