-- Singular test (blocks the build): the dimensions' unknown member key
-- (var unknown_member_key, '-1' by default) must be no customer's own id, or dim_customers
-- holds that key twice and facts whose customer row is missing join the real one. Each row
-- returned is such an id: set vars.unknown_member_key in dbt_project.yml to a value no id
-- holds, then run `dbt build --full-refresh` once. (One test per dimension: a test reading
-- two models runs only when both are selected.)
{{ config(tags=['customers']) }}

select customer_id
from {{ ref('stg_customers') }}
where customer_id = {{ unknown_key() }}
