-- name: id-overlap-outcomes
-- Distinct user_ids of sends, how many of them outcomes hold, and one example id of each side.
WITH s AS (SELECT DISTINCT user_id FROM sends), o AS (SELECT DISTINCT user_id FROM outcomes)
SELECT (SELECT count(*) FROM s),
       (SELECT count(*) FROM s WHERE user_id IN (SELECT user_id FROM o)),
       (SELECT min(user_id) FROM s),
       (SELECT min(user_id) FROM o);

-- name: id-overlap-users
-- Distinct user_ids of sends, how many of them users hold, and one example id of each side.
WITH s AS (SELECT DISTINCT user_id FROM sends), o AS (SELECT DISTINCT user_id FROM users)
SELECT (SELECT count(*) FROM s),
       (SELECT count(*) FROM s WHERE user_id IN (SELECT user_id FROM o)),
       (SELECT min(user_id) FROM s),
       (SELECT min(user_id) FROM o);

-- name: outcome-events
-- The events outcomes contain, most frequent first.
SELECT event, count(*) AS rows FROM outcomes GROUP BY 1 ORDER BY 2 DESC, 1;

-- name: classes
-- Per message class: decisions, hold-outs, randomized decisions, and non-randomized
-- decisions with a logged propensity.
SELECT message_class,
       count(*) AS decisions,
       count(*) FILTER (WHERE NOT treated) AS held_out,
       count(*) FILTER (WHERE randomized) AS randomized,
       count(propensity) FILTER (WHERE NOT coalesce(randomized, false)) AS logged_propensity
FROM sends GROUP BY 1 ORDER BY 1;

-- name: window-reach
-- Decisions, and those whose window of $seconds after the decision ends after $last.
SELECT count(*), count(*) FILTER (WHERE decided_at + to_seconds(CAST($seconds AS DOUBLE)) > $last)
FROM sends;

-- name: last-outcome
-- When the last outcome loaded occurred.
SELECT max(occurred_at) FROM outcomes;

-- name: naive-timestamps
-- Timestamps loaded without a zone, per table, from the load journal.
SELECT table_name, sum(naive_timestamps) AS naive
FROM _loads WHERE naive_timestamps > 0 GROUP BY 1 ORDER BY 1;

-- name: experiment-outcomes
-- Per experiment: assigned users, and those with any outcome after their assignment.
WITH a AS (
    SELECT experiment_id, user_id, min(assigned_at) AS assigned_at
    FROM assignments GROUP BY 1, 2
)
SELECT experiment_id,
       count(*) AS users,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM outcomes o WHERE o.user_id = a.user_id AND o.occurred_at > a.assigned_at
       )) AS with_outcomes
FROM a GROUP BY 1 ORDER BY 1;
