{{ config(tags=['products']) }}

{#
  One row per product_id, plus the unknown member (product_id '-1', category
  '(missing product)') that order lines point at when their product row is missing.
  `category` is the English name from the seed product_category_name_translation when it
  lists the source's category, else the source's name as it is, else '(no category)'.
#}
with products as (
    select * from {{ ref('stg_products') }}
),

translation as (
    select
        lower(trim(product_category_name))  as category_name,
        product_category_name_english       as category_english
    from {{ ref('product_category_name_translation') }}
)

select
    products.product_id,
    products.category_name,
    coalesce(translation.category_english, products.category_name, {{ empty_label('category') }}) as category,
    products.name_length,
    products.description_length,
    products.photos_qty,
    products.weight_g,
    products.length_cm,
    products.height_cm,
    products.width_cm,
    products.length_cm * products.height_cm * products.width_cm   as volume_cm3,
    products.updated_at,
    false                                                          as is_unknown_member
from products
left join translation
    on products.category_name = translation.category_name

union all

select
    {{ unknown_key() }}                         as product_id,
    cast(null as {{ dbt.type_string() }})       as category_name,
    {{ missing_label('product') }}              as category,
    cast(null as {{ dbt.type_int() }})          as name_length,
    cast(null as {{ dbt.type_int() }})          as description_length,
    cast(null as {{ dbt.type_int() }})          as photos_qty,
    cast(null as {{ dbt.type_int() }})          as weight_g,
    cast(null as {{ dbt.type_int() }})          as length_cm,
    cast(null as {{ dbt.type_int() }})          as height_cm,
    cast(null as {{ dbt.type_int() }})          as width_cm,
    cast(null as {{ dbt.type_int() }})          as volume_cm3,
    cast(null as {{ dbt.type_timestamp() }})    as updated_at,
    true                                        as is_unknown_member
