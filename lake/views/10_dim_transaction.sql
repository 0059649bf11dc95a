-- dim_transaction as the warehouse holds it: the row of the newest run per transaction_id. The prefix keeps
-- every run's rows (dim_transaction_history); object keys sort in run order, so the greatest "$path"
-- is the newest run.
CREATE OR REPLACE VIEW dim_transaction AS
SELECT h.*, d.deleted_at, d.deleted_by_run
FROM dim_transaction_history h
JOIN (
    SELECT transaction_id, max("$path") AS newest_path
    FROM dim_transaction_history
    GROUP BY transaction_id
) newest ON newest.transaction_id = h.transaction_id AND newest.newest_path = h."$path"
-- Marked deleted (as the warehouse's deleted_at/deleted_by_run) when a run after the row's found
-- its key gone from the source.
LEFT JOIN (
    SELECT key_from, key_to, deleted_at, deleted_by_run FROM tombstones WHERE table_name = 'dim_transaction'
) d ON h.transaction_id BETWEEN d.key_from AND d.key_to
    AND d.deleted_by_run > regexp_extract(h."$path", '([0-9]{8}T[0-9]{9}-[0-9a-f]+)-[0-9]+\.parquet$', 1)
