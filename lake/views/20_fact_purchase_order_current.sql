-- The latest version of every purchase order: the one committed last, i.e. the greatest version_order
-- (`<run id>:<position>`, compared byte-wise as the warehouse's COLLATE "C"), not the greatest
-- last_updated.
CREATE OR REPLACE VIEW fact_purchase_order_current AS
SELECT f.*
FROM fact_purchase_order f
JOIN (
    SELECT purchase_order_id, max(version_order) AS newest_version
    FROM fact_purchase_order
    GROUP BY purchase_order_id
) newest ON newest.purchase_order_id = f.purchase_order_id AND newest.newest_version = f.version_order
