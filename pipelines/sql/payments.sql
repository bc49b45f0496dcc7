SELECT
    order_id,
    CAST(payment_sequential AS INTEGER) AS payment_sequential,
    nullif(lower(trim(payment_type)), '') AS payment_type,
    CAST(payment_installments AS INTEGER) AS payment_installments,
    CAST(payment_value AS DECIMAL(12, 2)) AS payment_value,
    CAST(updated_at AS TIMESTAMP) AS updated_at
FROM batch
