-- Singular test (blocks the build): the dimensions' unknown member key
-- (var unknown_member_key, '-1' by default) must be no product's own id, or dim_products
-- holds that key twice and facts whose product row is missing join the real one. Each row
-- returned is such an id: set vars.unknown_member_key in dbt_project.yml to a value no id
-- holds, then run `dbt build --full-refresh` once. (One test per dimension: a test reading
-- two models runs only when both are selected.)
{{ config(tags=['products']) }}

select product_id
from {{ ref('stg_products') }}
where product_id = {{ unknown_key() }}
