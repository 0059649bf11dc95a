-- The latest version of every sales order: the one committed last, i.e. the greatest version_order
-- (`<run id>:<position>`, compared byte-wise as the warehouse's COLLATE "C"), not the greatest
-- last_updated.
CREATE OR REPLACE VIEW fact_sales_order_current AS
SELECT f.*, CAST(NULL AS VARCHAR) AS deleted_at, CAST(NULL AS VARCHAR) AS deleted_by_run
FROM fact_sales_order f
JOIN (
    SELECT sales_order_id, max(version_order) AS newest_version
    FROM fact_sales_order
    GROUP BY sales_order_id
) newest ON newest.sales_order_id = f.sales_order_id AND newest.newest_version = f.version_order
-- Not current once a run found the key gone from the source after this version was read.
WHERE NOT EXISTS (
    SELECT 1 FROM tombstones d
    WHERE d.table_name = 'fact_sales_order' AND f.sales_order_id BETWEEN d.key_from AND d.key_to
      AND d.deleted_by_run > f.version_order
)
