{{ config(tags=['products']) }}

select
    cast(product_id as {{ dbt.type_string() }})            as product_id,
    {{ blank_to_null('lower(cast(product_category_name as ' ~ dbt.type_string() ~ '))') }} as category_name,
    cast(product_name_length as {{ dbt.type_int() }})        as name_length,
    cast(product_description_length as {{ dbt.type_int() }}) as description_length,
    cast(product_photos_qty as {{ dbt.type_int() }})       as photos_qty,
    cast(product_weight_g as {{ dbt.type_int() }})         as weight_g,
    cast(product_length_cm as {{ dbt.type_int() }})        as length_cm,
    cast(product_height_cm as {{ dbt.type_int() }})        as height_cm,
    cast(product_width_cm as {{ dbt.type_int() }})         as width_cm,
    cast(updated_at as {{ dbt.type_timestamp() }})         as updated_at,
    cast(_loaded_at as {{ dbt.type_timestamp() }})         as loaded_at
from {{ source('landing', 'products') }}
