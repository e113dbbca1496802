-- Touch-based attribution: journeys built from treated sends and conversion events.
--
-- A touch is a treated send. Each touch belongs to the first conversion strictly after
-- it (DuckDB's ASOF join); when that conversion comes within the lookback, the touch is
-- part of the conversion's journey, otherwise it is a non-converting touch. Converting
-- journeys are those whose conversion falls in [start, end) (their touches may precede
-- start by up to the lookback); non-converting journeys are a user's period touches
-- between two conversions that no conversion claimed. So every touch lands in at most
-- one journey, and every conversion is counted in exactly one period.
--
-- Journeys never span users, so the users are split into buckets by ranges of
-- hash(user_id) and `journey-aggregates` runs once per bucket: its results are sums over
-- journeys, so the buckets' results add up, and DuckDB's memory holds one bucket's
-- journeys at a time. (A range, not `hash % n = k`, which DuckDB estimates at ~2 rows.)
--
-- Parameters: $events VARCHAR[] (the conversion objective's events), $by ('channel' or
-- 'class'), $start and $end (TIMESTAMPTZ, NULL for unbounded), $lookback_seconds, the
-- derived bounds $touch_from (start - lookback) and $convert_until (end + lookback), the
-- bucket's $hash_from and $hash_to (inclusive), and time decay's $half_life_days.

-- name: treated-touches
-- How many touches the journeys may hold: sizes the number of buckets.
SELECT count(*)
FROM sends
WHERE treated
    AND ($touch_from IS NULL OR decided_at >= $touch_from)
    AND ($end IS NULL OR decided_at < $end);

-- name: journey-aggregates
-- Everything the methods need from one bucket's journeys, in one pass over the data:
-- rows of `kind` 'path' (ChannelAttribution's path table: path, total_conversions,
-- total_null, total_conversion_value), 'time_decay' (credit per touch name) and
-- 'untouched' (the period's conversions that no touch reached within the lookback).
-- The bounds are bound values, not a joined one-row table, which keeps DuckDB's row
-- estimates closer; but since DuckDB 2.0 even these can fall under its ASOF loop-join
-- threshold, so `touches.attribute.merge_asof` runs this with the threshold at 0 (the
-- nested loop took 431 s at 10M journeys, the sort-merge 17.6 s).
WITH conversions AS (
    SELECT
        user_id,
        occurred_at AS converted_at,
        value,
        -- a conversion is (user_id, conversion_id): numbered per user, so no engine has to
        -- number every conversion of the period in one partition
        row_number() OVER (PARTITION BY user_id ORDER BY occurred_at, event_id) AS conversion_id
    FROM outcomes
    WHERE list_contains(CAST($events AS VARCHAR[]), event)
        AND hash(user_id) BETWEEN $hash_from AND $hash_to
        AND ($touch_from IS NULL OR occurred_at > $touch_from)
        AND ($convert_until IS NULL OR occurred_at < $convert_until)
),
touches AS (
    SELECT
        user_id,
        decided_at,
        CASE WHEN $by = 'class' THEN message_class ELSE channel END AS touch
    FROM sends
    WHERE treated
        AND hash(user_id) BETWEEN $hash_from AND $hash_to
        AND ($touch_from IS NULL OR decided_at >= $touch_from)
        AND ($end IS NULL OR decided_at < $end)
),
converters AS (SELECT DISTINCT user_id FROM conversions),
assigned AS (
    -- only converters' touches need the ASOF join; most users never convert
    SELECT
        t.user_id,
        t.decided_at,
        t.touch,
        c.conversion_id,
        c.converted_at,
        c.value,
        coalesce(c.converted_at <= t.decided_at + to_seconds($lookback_seconds), false)
            AS claimed
    FROM (SELECT * FROM touches SEMI JOIN converters USING (user_id)) AS t
    ASOF LEFT JOIN conversions AS c
        ON t.user_id = c.user_id AND c.converted_at > t.decided_at
    UNION ALL
    SELECT user_id, decided_at, touch, NULL, NULL, NULL, false
    FROM touches ANTI JOIN converters USING (user_id)
),
touch_journeys AS MATERIALIZED (
    -- one row per touch that lands in a journey of the period
    SELECT
        user_id,
        conversion_id,
        claimed AS converting,
        touch,
        decided_at,
        CASE WHEN claimed THEN value ELSE 0.0 END AS value,
        CASE
            WHEN claimed THEN (epoch_us(converted_at) - epoch_us(decided_at)) / 86400e6
        END AS age_days
    FROM assigned
    WHERE CASE
        WHEN claimed THEN ($start IS NULL OR converted_at >= $start)
            AND ($end IS NULL OR converted_at < $end)
        ELSE $start IS NULL OR decided_at >= $start
    END
),
journeys AS (
    -- a conversion's touches, or a user's unclaimed touches before one conversion (or
    -- after the last), ordered by time then name through a sorted struct list (cheaper in
    -- DuckDB than an ordered aggregate)
    SELECT
        converting,
        list_transform(
            list_sort(list({'at': decided_at, 'touch': touch})), lambda x: x.touch
        ) AS path,
        any_value(value) AS value
    FROM touch_journeys
    GROUP BY user_id, conversion_id, converting
),
decay AS (
    -- weights 2^(-age / half-life), ages counted from the journey's newest touch so that
    -- a short half-life cannot underflow a whole journey to 0/0 (the ratios are the same)
    SELECT
        touch,
        value,
        pow(
            2.0,
            -(age_days - min(age_days) OVER (PARTITION BY user_id, conversion_id))
                / $half_life_days
        ) AS weight,
        user_id,
        conversion_id
    FROM touch_journeys
    WHERE converting
),
in_period AS (
    SELECT count(*) AS n, coalesce(sum(value), 0) AS value
    FROM conversions
    WHERE ($start IS NULL OR converted_at >= $start) AND ($end IS NULL OR converted_at < $end)
),
touched AS (
    SELECT count(*) AS n, coalesce(sum(value), 0) AS value
    FROM (SELECT DISTINCT user_id, conversion_id, value FROM touch_journeys WHERE converting)
)
SELECT
    'path' AS kind,
    path,
    NULL AS touch,
    sum(CASE WHEN converting THEN 1 ELSE 0 END)::DOUBLE AS conversions,
    sum(CASE WHEN converting THEN 0 ELSE 1 END)::DOUBLE AS nulls,
    sum(value)::DOUBLE AS value
FROM journeys
GROUP BY path
UNION ALL
SELECT
    'time_decay',
    NULL,
    touch,
    sum(weight / journey_weight)::DOUBLE,
    NULL,
    sum(value * weight / journey_weight)::DOUBLE
FROM (
    SELECT *, sum(weight) OVER (PARTITION BY user_id, conversion_id) AS journey_weight
    FROM decay
)
GROUP BY touch
UNION ALL
SELECT 'untouched', NULL, NULL, (in_period.n - touched.n)::DOUBLE, NULL,
    (in_period.value - touched.value)::DOUBLE
FROM in_period, touched;

-- name: treated-per-class
-- The treated sends per class decided in [start, end), and the class's channel: the one
-- pass over `sends` of `incremental-conversions` (which splices it in as /*sent*/), a
-- statement of its own so that another engine can run it where the sends are.
SELECT message_class, mode(channel) AS channel, count(*) AS n
FROM sends
WHERE treated
    AND ($start IS NULL OR decided_at >= $start)
    AND ($end IS NULL OR decided_at < $end)
GROUP BY message_class;

-- name: incremental-conversions
-- Effect on the treated x treated sends per class of one uplift run, summed per item ($by:
-- channel or class), for sends decided in [start, end). The effect on the treated (`att`,
-- `att_se` in the estimate's details, from the doubly robust scores) is the per-send
-- effect of the sends that were made; a run without it falls back to the ATE (counted in
-- `ate_only`). A CI (att ± $z·att_se, or the stored ATE CI) sums class CIs for one class
-- and adds half-widths in quadrature across classes (estimated independently). An item
-- with a class lacking a usable estimate gets that class's status in `bad_status`.
-- /*sent*/ is `treated-per-class`, or its rows counted by another engine.
WITH sent AS (/*sent*/),
stored AS (
    SELECT
        message_class, ate, ate_ci_lower, ate_ci_upper, status,
        TRY_CAST(json_extract_string(details, '$.att') AS DOUBLE) AS att,
        TRY_CAST(json_extract_string(details, '$.att_se') AS DOUBLE) AS att_se
    FROM uplift_estimates
    WHERE run_id = $run_id AND objective = $objective AND segment = 'all'
),
estimates AS (
    SELECT *, coalesce(isfinite(att) AND isfinite(att_se), false) AS has_att
    FROM stored
),
per_class AS (
    SELECT
        s.message_class,
        s.channel,
        s.n,
        CASE
            WHEN e.message_class IS NULL THEN 'no_estimate'
            WHEN e.status <> 'ok' THEN e.status
            WHEN e.has_att THEN 'ok'
            WHEN NOT coalesce(
                isfinite(e.ate) AND isfinite(e.ate_ci_lower) AND isfinite(e.ate_ci_upper), false
            ) THEN 'failed:no_ci'
            ELSE 'ok'
        END AS status,
        coalesce(e.has_att, false) AS has_att,
        CASE WHEN e.has_att THEN e.att ELSE e.ate END * s.n AS effect,
        CASE WHEN e.has_att THEN e.att - $z * e.att_se ELSE e.ate_ci_lower END * s.n AS lower,
        CASE WHEN e.has_att THEN e.att + $z * e.att_se ELSE e.ate_ci_upper END * s.n AS upper
    FROM sent AS s
    LEFT JOIN estimates AS e USING (message_class)
)
SELECT
    CASE WHEN $by = 'class' THEN message_class ELSE channel END AS item,
    sum(n)::BIGINT AS n_treatment,
    count(*)::BIGINT AS classes,
    sum(effect)::DOUBLE AS effect,
    sum(lower)::DOUBLE AS lower,
    sum(upper)::DOUBLE AS upper,
    sqrt(sum(((upper - lower) / 2) ^ 2))::DOUBLE AS half_width,
    min(CASE WHEN status <> 'ok' THEN status END) AS bad_status,
    min(CASE WHEN status <> 'ok' THEN message_class || ': ' || status END) AS note,
    count(*) FILTER (WHERE status = 'ok' AND NOT has_att)::BIGINT AS ate_only
FROM per_class
GROUP BY item
ORDER BY item;

-- name: latest-uplift-run
-- The newest uplift run with overall estimates for the objective, preferring $week.
SELECT run_id, any_value(week) AS week, max(created_at) AS created_at
FROM uplift_estimates
WHERE objective = $objective AND segment = 'all'
GROUP BY run_id
ORDER BY coalesce(any_value(week) = $week, false) DESC, max(created_at) DESC, run_id DESC
LIMIT 1;

-- name: insert-credit
INSERT INTO touch_credits VALUES (
    $run_id, $week, $period_start, $period_end, $dimension, $item, $method, $conversions,
    $value, $share, $se, $ci_lower, $ci_upper, $status, $total_conversions, $lookback, now(),
    $details
);

-- name: latest-credits-run
-- The newest stored touch attribution for a dimension, preferring $week.
SELECT run_id
FROM touch_credits
WHERE dimension = $dimension AND ($week IS NULL OR week = $week)
GROUP BY run_id
ORDER BY max(created_at) DESC, run_id DESC
LIMIT 1;

-- name: credits-of-run
SELECT item, method, conversions, value, share, se, ci_lower, ci_upper, status
FROM touch_credits
WHERE run_id = $run_id AND dimension = $dimension
ORDER BY item, method;
