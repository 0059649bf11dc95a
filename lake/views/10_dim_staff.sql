-- dim_staff as the warehouse holds it: the row of the newest run per staff_id. The prefix keeps
-- every run's rows (dim_staff_history); object keys sort in run order, so the greatest "$path"
-- is the newest run.
CREATE OR REPLACE VIEW dim_staff AS
SELECT h.*
FROM dim_staff_history h
JOIN (
    SELECT staff_id, max("$path") AS newest_path
    FROM dim_staff_history
    GROUP BY staff_id
) newest ON newest.staff_id = h.staff_id AND newest.newest_path = h."$path"
