-- dim_counterparty as the warehouse holds it: the row of the newest run per counterparty_id. The prefix keeps
-- every run's rows (dim_counterparty_history); object keys sort in run order, so the greatest "$path"
-- is the newest run.
CREATE OR REPLACE VIEW dim_counterparty AS
SELECT h.*
FROM dim_counterparty_history h
JOIN (
    SELECT counterparty_id, max("$path") AS newest_path
    FROM dim_counterparty_history
    GROUP BY counterparty_id
) newest ON newest.counterparty_id = h.counterparty_id AND newest.newest_path = h."$path"
