-- Plain SQL that DuckDB and Spark both run (see transform.engine).
SELECT
    order_id,
    CAST(order_item_id AS INTEGER) AS order_item_id,
    product_id,
    seller_id,
    CAST(shipping_limit_date AS TIMESTAMP) AS shipping_limit_date,
    CAST(price AS DECIMAL(12, 2)) AS price,
    CAST(freight_value AS DECIMAL(12, 2)) AS freight_value,
    CAST(updated_at AS TIMESTAMP) AS updated_at
FROM batch
