-- Typing and tidying only: one output row per input row.
SELECT
    customer_id,
    customer_unique_id,
    lpad(trim(CAST(customer_zip_code_prefix AS STRING)), 5, '0') AS customer_zip_code_prefix,
    lower(trim(customer_city)) AS customer_city,
    upper(trim(customer_state)) AS customer_state,
    CAST(updated_at AS TIMESTAMP) AS updated_at
FROM batch
