-- Statements of late-data detection (upshot/freshness.py): rows that reached a week
-- after its report read the data.

-- name: late-rows
-- Rows of a week (decisions in it; outcomes in it or its windows) loaded after $since.
SELECT (SELECT count(*) FROM sends s JOIN _loads l USING (load_id)
        WHERE s.decided_at >= $start AND s.decided_at < $end AND l.loaded_at > $since)
     + (SELECT count(*) FROM outcomes o JOIN _loads l USING (load_id)
        WHERE o.occurred_at >= $start AND o.occurred_at < $until AND l.loaded_at > $since)
       AS late_rows;

-- name: reported-weeks
-- The weeks before $week that the weekly job reported, and when their data was read.
SELECT week, data_as_of
FROM weekly_runs
WHERE current AND week < $week AND data_as_of IS NOT NULL
ORDER BY week DESC
LIMIT $weeks;
