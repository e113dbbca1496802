-- name: table-rows
-- Rows and time range of each input table.
SELECT 'sends' AS "table", count(*) AS rows, min(decided_at) AS first, max(decided_at) AS last FROM sends
UNION ALL SELECT 'outcomes', count(*), min(occurred_at), max(occurred_at) FROM outcomes
UNION ALL SELECT 'users', count(*), NULL, NULL FROM users
UNION ALL SELECT 'assignments', count(*), min(assigned_at), max(assigned_at) FROM assignments;

-- name: classes
-- Decisions per message class and channel, sent and held out.
SELECT message_class, channel,
       count(*) FILTER (WHERE treated) AS n_treated,
       count(*) FILTER (WHERE NOT treated) AS n_control,
       count(*) FILTER (WHERE randomized) AS n_randomized,
       min(decided_at) AS first, max(decided_at) AS last
FROM sends GROUP BY ALL ORDER BY message_class, channel;

-- name: experiments
-- Users per experiment and arm.
SELECT experiment_id, variant, count(DISTINCT user_id) AS users,
       min(assigned_at) AS first, max(assigned_at) AS last
FROM assignments GROUP BY ALL ORDER BY experiment_id, variant;

-- name: quarantine
-- Quarantined rows by table and reason.
SELECT table_name AS "table", reason, count(*) AS rows, count(DISTINCT source) AS files
FROM quarantine GROUP BY ALL ORDER BY 1, 3 DESC;

-- name: last-loads
-- The most recent loads.
SELECT loaded_at, table_name AS "table", source, rows_accepted, duplicates_skipped, rows_quarantined
FROM _loads ORDER BY loaded_at DESC, source LIMIT $limit;
