-- dim_payment_type as the warehouse holds it: the row of the newest run per payment_type_id. The prefix keeps
-- every run's rows (dim_payment_type_history); object keys sort in run order, so the greatest "$path"
-- is the newest run.
CREATE OR REPLACE VIEW dim_payment_type AS
SELECT h.*, d.deleted_at, d.deleted_by_run
FROM dim_payment_type_history h
JOIN (
    SELECT payment_type_id, max("$path") AS newest_path
    FROM dim_payment_type_history
    GROUP BY payment_type_id
) newest ON newest.payment_type_id = h.payment_type_id AND newest.newest_path = h."$path"
-- Marked deleted (as the warehouse's deleted_at/deleted_by_run) when a run after the row's found
-- its key gone from the source.
LEFT JOIN (
    SELECT key_from, key_to, deleted_at, deleted_by_run FROM tombstones WHERE table_name = 'dim_payment_type'
) d ON h.payment_type_id BETWEEN d.key_from AND d.key_to
    AND d.deleted_by_run > regexp_extract(h."$path", '([0-9]{8}T[0-9]{9}-[0-9a-f]+)-[0-9]+\.parquet$', 1)
