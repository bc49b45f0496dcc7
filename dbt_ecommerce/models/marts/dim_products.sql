{{ config(tags=['products']) }}

{# One row per product_id. #}
select
    product_id,
    category_name,
    coalesce(category_name, 'unknown') as category,
    name_length,
    description_length,
    photos_qty,
    weight_g,
    length_cm,
    height_cm,
    width_cm,
    length_cm * height_cm * width_cm   as volume_cm3,
    updated_at
from {{ ref('stg_products') }}
