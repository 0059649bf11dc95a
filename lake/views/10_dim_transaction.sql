-- dim_transaction as the warehouse holds it: the row of the newest run per transaction_id. The prefix keeps
-- every run's rows (dim_transaction_history); object keys sort in run order, so the greatest "$path"
-- is the newest run.
CREATE OR REPLACE VIEW dim_transaction AS
SELECT h.*
FROM dim_transaction_history h
JOIN (
    SELECT transaction_id, max("$path") AS newest_path
    FROM dim_transaction_history
    GROUP BY transaction_id
) newest ON newest.transaction_id = h.transaction_id AND newest.newest_path = h."$path"
