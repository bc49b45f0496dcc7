-- Singular test (blocks the build): the dimensions' unknown member key
-- (var unknown_member_key, '-1' by default) must be no customer's or product's own id, or
-- the dimension holds that key twice and facts whose row is missing join the real one. Each
-- row returned is such an id: set vars.unknown_member_key in dbt_project.yml to a value no
-- id holds, then run `dbt build --full-refresh` once.
{{ config(tags=['customers', 'products']) }}

select 'customers' as source_table, customer_id as source_key
from {{ ref('stg_customers') }}
where customer_id = {{ unknown_key() }}

union all

select 'products', product_id
from {{ ref('stg_products') }}
where product_id = {{ unknown_key() }}
