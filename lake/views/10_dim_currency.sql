-- dim_currency as the warehouse holds it: the row of the newest run per currency_id. The prefix keeps
-- every run's rows (dim_currency_history); object keys sort in run order, so the greatest "$path"
-- is the newest run.
CREATE OR REPLACE VIEW dim_currency AS
SELECT h.*
FROM dim_currency_history h
JOIN (
    SELECT currency_id, max("$path") AS newest_path
    FROM dim_currency_history
    GROUP BY currency_id
) newest ON newest.currency_id = h.currency_id AND newest.newest_path = h."$path"
