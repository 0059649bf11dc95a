-- Payments paid and outstanding, by payment type and currency, over the latest version of each
-- payment (as the warehouse view). The FILTER clause is in both Trino and DuckDB.
CREATE OR REPLACE VIEW payments_status AS
SELECT t.payment_type_name, c.currency_code,
       count(*) FILTER (WHERE p.paid) AS paid_count,
       coalesce(sum(p.payment_amount) FILTER (WHERE p.paid), 0) AS paid_amount,
       count(*) FILTER (WHERE NOT p.paid) AS outstanding_count,
       coalesce(sum(p.payment_amount) FILTER (WHERE NOT p.paid), 0) AS outstanding_amount
FROM fact_payment_current p
JOIN dim_payment_type t ON t.payment_type_id = p.payment_type_id
JOIN dim_currency c ON c.currency_id = p.currency_id
GROUP BY t.payment_type_name, c.currency_code
