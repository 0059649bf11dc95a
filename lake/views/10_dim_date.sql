-- dim_date as the warehouse holds it: the row of the newest run per date_id. The prefix keeps
-- every run's rows (dim_date_history); object keys sort in run order, so the greatest "$path"
-- is the newest run.
CREATE OR REPLACE VIEW dim_date AS
SELECT h.*
FROM dim_date_history h
JOIN (
    SELECT date_id, max("$path") AS newest_path
    FROM dim_date_history
    GROUP BY date_id
) newest ON newest.date_id = h.date_id AND newest.newest_path = h."$path"
