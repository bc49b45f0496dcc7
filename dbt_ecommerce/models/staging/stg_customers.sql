{{ config(tags=['customers']) }}

{# Blank text is NULL; a zip code that lost its leading zero (read as a number) gets it back. #}
with customers as (
    select
        cast(customer_id as {{ dbt.type_string() }})                                    as customer_id,
        cast(customer_unique_id as {{ dbt.type_string() }})                             as customer_unique_id,
        {{ blank_to_null('cast(customer_zip_code_prefix as ' ~ dbt.type_string() ~ ')') }} as zip_code_prefix,
        {{ blank_to_null('cast(customer_city as ' ~ dbt.type_string() ~ ')') }}          as city,
        {{ blank_to_null('cast(customer_state as ' ~ dbt.type_string() ~ ')') }}         as state,
        cast(updated_at as {{ dbt.type_timestamp() }})                                  as updated_at,
        cast(_loaded_at as {{ dbt.type_timestamp() }})                                  as loaded_at
    from {{ source('landing', 'customers') }}
)

select
    customer_id,
    customer_unique_id,
    case when length(zip_code_prefix) < 5 then lpad(zip_code_prefix, 5, '0')
         else zip_code_prefix end as zip_code_prefix,
    city,
    state,
    updated_at,
    loaded_at
from customers
