-- dim_design as the warehouse holds it: the row of the newest run per design_id. The prefix keeps
-- every run's rows (dim_design_history); object keys sort in run order, so the greatest "$path"
-- is the newest run.
CREATE OR REPLACE VIEW dim_design AS
SELECT h.*
FROM dim_design_history h
JOIN (
    SELECT design_id, max("$path") AS newest_path
    FROM dim_design_history
    GROUP BY design_id
) newest ON newest.design_id = h.design_id AND newest.newest_path = h."$path"
