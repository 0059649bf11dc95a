-- dim_location as the warehouse holds it: the row of the newest run per location_id. The prefix keeps
-- every run's rows (dim_location_history); object keys sort in run order, so the greatest "$path"
-- is the newest run.
CREATE OR REPLACE VIEW dim_location AS
SELECT h.*
FROM dim_location_history h
JOIN (
    SELECT location_id, max("$path") AS newest_path
    FROM dim_location_history
    GROUP BY location_id
) newest ON newest.location_id = h.location_id AND newest.newest_path = h."$path"
