-- The source spells "length" as "lenght"; the warehouse does not.
SELECT
    product_id,
    nullif(lower(trim(product_category_name)), '') AS product_category_name,
    CAST(product_name_lenght AS INTEGER) AS product_name_length,
    CAST(product_description_lenght AS INTEGER) AS product_description_length,
    CAST(product_photos_qty AS INTEGER) AS product_photos_qty,
    CAST(product_weight_g AS INTEGER) AS product_weight_g,
    CAST(product_length_cm AS INTEGER) AS product_length_cm,
    CAST(product_height_cm AS INTEGER) AS product_height_cm,
    CAST(product_width_cm AS INTEGER) AS product_width_cm,
    CAST(updated_at AS TIMESTAMP) AS updated_at
FROM batch
