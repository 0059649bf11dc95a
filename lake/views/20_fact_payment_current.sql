-- The latest version of every payment: the one committed last, i.e. the greatest version_order
-- (`<run id>:<position>`, compared byte-wise as the warehouse's COLLATE "C"), not the greatest
-- last_updated.
CREATE OR REPLACE VIEW fact_payment_current AS
SELECT f.*
FROM fact_payment f
JOIN (
    SELECT payment_id, max(version_order) AS newest_version
    FROM fact_payment
    GROUP BY payment_id
) newest ON newest.payment_id = f.payment_id AND newest.newest_version = f.version_order
