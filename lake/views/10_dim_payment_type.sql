-- dim_payment_type as the warehouse holds it: the row of the newest run per payment_type_id. The prefix keeps
-- every run's rows (dim_payment_type_history); object keys sort in run order, so the greatest "$path"
-- is the newest run.
CREATE OR REPLACE VIEW dim_payment_type AS
SELECT h.*
FROM dim_payment_type_history h
JOIN (
    SELECT payment_type_id, max("$path") AS newest_path
    FROM dim_payment_type_history
    GROUP BY payment_type_id
) newest ON newest.payment_type_id = h.payment_type_id AND newest.newest_path = h."$path"
