-- Per-decision frames for uplift estimation and off-policy evaluation.
-- `{...}` markers are filled by upshot.attribution.uplift.frames with quoted identifiers and
-- `$name` parameters only; every value is bound.

-- name: user-columns
-- The columns of `users`, in table order, with their types. DESCRIBE, not
-- information_schema: it sees what the name resolves to, the lake's view in lake mode.
SELECT column_name, column_type AS data_type FROM (DESCRIBE users);

-- name: decision-frame
-- One row per send decision (sent or held out) of the classes and period asked, with the
-- user's covariates, the pre-period value of each objective and one column per objective
-- ({rest}: `, u.<covariate>..., p.pre_<objective>..., p.<objective>...`).
-- Decisions meet outcomes in a single join (same user, from $pre_window before the
-- decision to the longest window after it); each objective and each pre-period value is
-- one conditional aggregate over that join ({objectives}): the objective counts only
-- events strictly after the decision, its pre-period value only events strictly before.
WITH decisions AS (
    SELECT send_id, user_id, message_class, channel, decided_at, treated, propensity, randomized
    FROM sends
    WHERE ($classes IS NULL OR list_contains(CAST($classes AS VARCHAR[]), message_class))
        AND decided_at >= coalesce(CAST($start AS TIMESTAMPTZ), '-infinity'::TIMESTAMPTZ)
        AND decided_at < coalesce(CAST($end AS TIMESTAMPTZ), 'infinity'::TIMESTAMPTZ)
),
events AS (
    SELECT user_id, occurred_at, event, value
    FROM outcomes
    WHERE list_contains(CAST($events AS VARCHAR[]), event)
        AND occurred_at > coalesce(
            CAST($start AS TIMESTAMPTZ) - to_seconds(CAST($pre_window AS DOUBLE)),
            '-infinity'::TIMESTAMPTZ
        )
        AND occurred_at <= coalesce(
            CAST($end AS TIMESTAMPTZ) + to_seconds(CAST($max_window AS DOUBLE)),
            'infinity'::TIMESTAMPTZ
        )
),
per_decision AS (
    SELECT
        d.send_id, d.user_id, d.message_class, d.channel, d.decided_at, d.treated,
        d.propensity, d.randomized,
        {objectives}
    FROM decisions AS d
    LEFT JOIN events AS o
        ON o.user_id = d.user_id
        AND o.occurred_at > d.decided_at - to_seconds(CAST($pre_window AS DOUBLE))
        AND o.occurred_at <= d.decided_at + to_seconds(CAST($max_window AS DOUBLE))
    GROUP BY ALL
),
users_once AS (
    -- a user loaded twice must not duplicate their decisions
    SELECT DISTINCT ON (user_id) *
    FROM users
    ORDER BY user_id, load_id DESC NULLS LAST
)
SELECT p.send_id, p.user_id, p.message_class, p.channel, p.decided_at, p.treated,
    p.propensity, p.randomized{rest}
FROM per_decision AS p
LEFT JOIN users_once AS u ON u.user_id = p.user_id
ORDER BY p.message_class, p.decided_at, p.send_id;

-- name: objective-any
-- 1.0 when at least one of the objective's events happened inside its window (or the
-- pre-window: {inside} says which), else 0.0.
CAST(count(o.event) FILTER (WHERE {inside}) > 0 AS DOUBLE)

-- name: objective-sum
-- The sum of the events' values inside the window (0.0 when there are none), added as exact
-- decimals (9 places) so it does not depend on the order an engine adds rows in (DuckDB's
-- parallel sums, Spark's partitions): an ulp of noise in a covariate moves a tree model's
-- bins, and with them the estimates, between two runs on the same data. Values no decimal
-- holds (NaN, infinities, |v| >= 1e20) keep the float sum.
coalesce(
    CASE WHEN count(*) FILTER (WHERE {inside} AND NOT abs(o.value) < 1e20) = 0
    THEN CAST(sum(CAST(CASE WHEN abs(o.value) < 1e20 THEN o.value END AS DECIMAL(38, 9)))
        FILTER (WHERE {inside}) AS DOUBLE)
    ELSE sum(o.value) FILTER (WHERE {inside}) END,
    0.0)

-- name: objective-count
-- The number of events inside the window.
CAST(count(o.event) FILTER (WHERE {inside}) AS DOUBLE)

-- name: objective-distinct_days
-- The number of distinct UTC calendar days with an event inside the window.
CAST(count(DISTINCT CAST(o.occurred_at AS DATE)) FILTER (WHERE {inside}) AS DOUBLE)

-- name: objective-inside
-- An outcome row counts for objective {k}: one of its events, strictly after the decision
-- and inside its window.
list_contains(CAST({events} AS VARCHAR[]), o.event)
    AND o.occurred_at > d.decided_at
    AND o.occurred_at <= d.decided_at + to_seconds(CAST({window} AS DOUBLE))

-- name: class-names
-- Every message class the sends hold, for errors that list the known ones.
SELECT DISTINCT message_class FROM sends ORDER BY 1;
-- name: pre-inside
-- An outcome row counts for the pre-period value of objective {k}: one of its events,
-- strictly before the decision (the join keeps only those less than $pre_window before it).
list_contains(CAST({events} AS VARCHAR[]), o.event)
    AND o.occurred_at < d.decided_at
