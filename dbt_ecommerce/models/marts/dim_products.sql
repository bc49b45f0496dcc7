{{ config(
    tags=['products'],
    materialized='incremental',
    unique_key='product_id',
    incremental_strategy='delete+insert',
    tmp_relation_type='transient',
    on_schema_change='fail',
    post_hook="{{ delete_gone('stg_products', ['product_id'], 'not is_unknown_member') }}",
) }}

{#
  One row per product_id, plus the unknown member (product_id '-1', category
  '(missing product)') that order lines point at when their product row is missing.
  `category` is the English name from the seed product_category_name_translation when it
  lists the source's category, else the source's name as it is, else '(no category)'.
  Incremental (macros/incremental_facts.sql): a build rebuilds the products written since the
  last one and those whose category the seed now names otherwise (a few hundred thousand rows
  against a seed of a few dozen: cheap), rewrites the unknown member, and `delete_gone`
  removes the products deleted since. fact_order_items rebuilds the lines of every product
  this model rewrote.
#}
with translation as (
    select
        lower(trim(product_category_name))  as category_name,
        product_category_name_english       as category_english
    from {{ ref('product_category_name_translation') }}
),

products as (
    select * from {{ ref('stg_products') }}
    {% if is_incremental() %}
    where loaded_at > {{ loaded_since() }}
       or product_id in (
           select dim.product_id
           from {{ this }} as dim
           left join translation
               on dim.category_name = translation.category_name
           where not dim.is_unknown_member
             and dim.category <> {{ category('translation.category_english', 'dim.category_name') }}
       )
    {% endif %}
)

select
    products.product_id,
    products.category_name,
    {{ category('translation.category_english', 'products.category_name') }} as category,
    products.name_length,
    products.description_length,
    products.photos_qty,
    products.weight_g,
    products.length_cm,
    products.height_cm,
    products.width_cm,
    products.length_cm * products.height_cm * products.width_cm   as volume_cm3,
    products.updated_at,
    false                                                          as is_unknown_member,
    products.loaded_at,
    {{ build_started_at() }}                                       as built_at
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
    true                                        as is_unknown_member,
    cast(null as {{ dbt.type_timestamp() }})    as loaded_at,
    {{ build_started_at() }}                    as built_at
