-- Typing and tidying only: one output row per input row.
SELECT
    customer_id,
    customer_unique_id,
    -- blank text is NULL: lpad made '' into '00000', and '' failed the state's length check
    lpad(nullif(trim(CAST(customer_zip_code_prefix AS STRING)), ''), 5, '0')
        AS customer_zip_code_prefix,
    nullif(lower(trim(customer_city)), '') AS customer_city,
    nullif(upper(trim(customer_state)), '') AS customer_state,
    CAST(updated_at AS TIMESTAMP) AS updated_at
FROM batch
