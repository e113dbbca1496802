-- The weekly report and job: every statement returns aggregates (never a user id), so no
-- user-level row leaves DuckDB. Weeks are [start, end) in UTC.

-- name: uplift-runs-by-week
-- The uplift run behind each week up to $week: the one the weekly job pinned, else the newest.
WITH newest AS (
    SELECT week, arg_max(run_id, created_at) AS run_id
    FROM uplift_estimates
    WHERE week IS NOT NULL AND week <= $week
    GROUP BY week
), pinned AS (
    SELECT week, uplift_run_id AS run_id
    FROM weekly_runs
    WHERE current AND uplift_run_id IS NOT NULL AND week <= $week
)
SELECT week, coalesce(p.run_id, n.run_id) AS run_id
FROM newest n FULL JOIN pinned p USING (week)
ORDER BY week DESC
LIMIT $weeks;

-- name: uplift-of-runs
-- The overall (segment 'all') estimates of the given runs.
SELECT week, message_class, channel, objective, design, ate, ate_se, ate_ci_lower, ate_ci_upper,
       pvalue, naive_effect, n_treated, n_control, refute_passed, refute_placebo, status
FROM uplift_estimates
WHERE run_id IN (SELECT unnest($runs)) AND segment = 'all'
ORDER BY week, message_class, objective;

-- name: class-users-by-week
-- Decisions, sends and distinct users (all, sent, held out) per ISO week and message class
-- (k-anonymity counts the users of each arm; sends turn per-send uplift into totals).
SELECT strftime(decided_at, '%G-W%V') AS week, message_class,
       any_value(channel ORDER BY channel) AS channel,
       count(*) AS decisions,
       count(*) FILTER (WHERE treated) AS treated,
       count(DISTINCT user_id) AS users,
       count(DISTINCT user_id) FILTER (WHERE treated) AS treated_users,
       count(DISTINCT user_id) FILTER (WHERE NOT treated) AS control_users
FROM sends
WHERE decided_at >= $start AND decided_at < $end
GROUP BY ALL
ORDER BY 1, 2;

-- name: channel-users-of-week
-- Distinct users sent a message on each channel in the week: the users behind the
-- channel's touch credit (k-anonymity of the touches chart).
SELECT channel, count(DISTINCT user_id) AS users
FROM sends
WHERE decided_at >= $start AND decided_at < $end AND treated
GROUP BY ALL
ORDER BY 1;

-- name: daily-counts
-- Per UTC day of the week: sends, outcome events and the distinct users behind each.
WITH days AS (
    SELECT unnest(generate_series($start::TIMESTAMPTZ, $end::TIMESTAMPTZ - INTERVAL 1 DAY,
                                  INTERVAL 1 DAY)) AS day
), s AS (
    SELECT date_trunc('day', decided_at) AS day, count(*) AS sends,
           count(DISTINCT user_id) AS send_users
    FROM sends WHERE decided_at >= $start AND decided_at < $end GROUP BY 1
), o AS (
    SELECT date_trunc('day', occurred_at) AS day, count(*) AS outcomes,
           count(DISTINCT user_id) AS outcome_users
    FROM outcomes WHERE occurred_at >= $start AND occurred_at < $end GROUP BY 1
)
SELECT days.day::DATE AS day, coalesce(sends, 0) AS sends, coalesce(send_users, 0) AS send_users,
       coalesce(outcomes, 0) AS outcomes, coalesce(outcome_users, 0) AS outcome_users
FROM days LEFT JOIN s USING (day) LEFT JOIN o USING (day)
ORDER BY 1;

-- name: coverage
-- The newest decision and outcome in the warehouse.
SELECT (SELECT max(decided_at) FROM sends) AS last_send,
       (SELECT max(occurred_at) FROM outcomes) AS last_outcome;

-- name: week-loads
-- The loaded files that brought rows of the week (decisions in it, or outcomes inside the
-- week and its outcome windows), per table.
WITH ids AS (
    SELECT DISTINCT load_id FROM sends WHERE decided_at >= $start AND decided_at < $end
    UNION
    SELECT DISTINCT load_id FROM outcomes WHERE occurred_at >= $start AND occurred_at < $until
)
SELECT table_name AS "table", count(*) AS files, sum(rows_read) AS rows_read,
       sum(rows_accepted) AS rows_accepted, sum(duplicates_skipped) AS duplicates_skipped,
       sum(rows_quarantined) AS rows_quarantined, max(loaded_at) AS last_loaded_at
FROM _loads
WHERE load_id IN (SELECT load_id FROM ids)
GROUP BY 1
ORDER BY 1;

-- name: week-files-over-gate
-- The files behind the week whose quarantined share of rows exceeded the load gate.
WITH ids AS (
    SELECT DISTINCT load_id FROM sends WHERE decided_at >= $start AND decided_at < $end
    UNION
    SELECT DISTINCT load_id FROM outcomes WHERE occurred_at >= $start AND occurred_at < $until
)
SELECT source, table_name AS "table", rows_read, rows_quarantined
FROM _loads
WHERE load_id IN (SELECT load_id FROM ids) AND rows_read > 0
  AND rows_quarantined > $gate * rows_read
ORDER BY source;

-- name: week-quarantine
-- Quarantined rows by table and reason, from the files that brought rows of the week.
WITH ids AS (
    SELECT DISTINCT load_id FROM sends WHERE decided_at >= $start AND decided_at < $end
    UNION
    SELECT DISTINCT load_id FROM outcomes WHERE occurred_at >= $start AND occurred_at < $until
)
SELECT table_name AS "table", reason, count(*) AS rows
FROM quarantine
WHERE load_id IN (SELECT load_id FROM ids)
GROUP BY ALL
ORDER BY 1, 3 DESC, 2;

-- name: first-outcome
-- The oldest outcome event: reachability is not shown for weeks before the data starts.
SELECT min(occurred_at) AS first_outcome FROM outcomes;

-- name: reach-base
-- Users, and users opted in at the start, of one channel ({opt_in} is a quoted column).
SELECT count(*) AS users, count(*) FILTER (WHERE {opt_in}) AS opted_in FROM users;

-- name: reach-exits
-- Opted-in users per ISO week of their first opt-out event on one channel, up to $end.
WITH first_out AS (
    SELECT user_id, min(occurred_at) AS at
    FROM outcomes
    WHERE event IN (SELECT unnest($events)) AND occurred_at < $end
    GROUP BY 1
)
SELECT strftime(f.at, '%G-W%V') AS week, count(*) AS exits
FROM first_out f JOIN users u USING (user_id)
WHERE {opt_in}
GROUP BY 1
ORDER BY 1;

-- name: experiment-runs
-- The newest result run of each experiment.
SELECT experiment_id, arg_max(run_id, created_at) AS run_id
FROM experiment_results
WHERE experiment_id IN (SELECT unnest($experiments))
GROUP BY 1
ORDER BY 1;

-- name: experiment-results-of-runs
-- Every result row of the given (experiment, run) pairs.
SELECT experiment_id, arm, control_arm, metric, kind, role, control, treatment, effect,
       effect_ci_lower, effect_ci_upper, rel_effect, rel_effect_ci_lower, rel_effect_ci_upper,
       pvalue, pvalue_adj, status, n_control, n_treatment, srm_pvalue, srm_status, verdict,
       reason, details
FROM experiment_results
WHERE run_id IN (SELECT unnest($runs)) AND experiment_id IN (SELECT unnest($experiments))
ORDER BY experiment_id, arm, metric;

-- name: weekly-run-of-week
-- The current weekly run of a week.
SELECT run_id, status, uplift_run_id, experiment_runs, weights_version, stages, data_as_of
FROM weekly_runs
WHERE week = $week AND current;

-- name: previous-weights-version
-- The weights version the weekly job published for the newest week before $week.
SELECT weights_version FROM weekly_runs
WHERE current AND week < $week AND weights_version IS NOT NULL
ORDER BY week DESC
LIMIT 1;

-- name: insert-weekly-run
INSERT INTO weekly_runs VALUES ($week, $run_id, 'running', now(), NULL, NULL, NULL, NULL, NULL,
                                NULL, NULL, false);

-- name: update-weekly-run
UPDATE weekly_runs
SET status = $status, uplift_run_id = $uplift_run_id, experiment_runs = $experiment_runs,
    weights_version = $weights_version, report_dir = $report_dir, stages = $stages
WHERE run_id = $run_id;

-- name: make-current
-- Moves the week's `current` mark to this run (inside one transaction with the alerts).
UPDATE weekly_runs SET current = (run_id = $run_id), finished_at = CASE WHEN run_id = $run_id
    THEN now() ELSE finished_at END
WHERE week = $week;

-- name: insert-alert
INSERT INTO alerts VALUES ($run_id, $week, $rule, $severity, $subject, $message, $value,
                           $threshold);

-- name: set-data-as-of
-- The moment the run finished loading: rows loaded later are late for this week.
UPDATE weekly_runs SET data_as_of = now() WHERE run_id = $run_id;

-- name: current-runs
-- The current run of every reported week.
SELECT week, run_id, status, started_at, finished_at, data_as_of, uplift_run_id,
       experiment_runs, weights_version, report_dir, stages
FROM weekly_runs
WHERE current
ORDER BY week;

-- name: longterm-of-run
-- The projected long-term effect of each class and outcome of an uplift run (issue 16).
SELECT message_class, channel, outcome, estimate, se, ci_lower, ci_upper, n_treated,
       n_control, n_history, status, backtest
FROM longterm_estimates
WHERE run_id = $run_id
ORDER BY message_class, outcome;

-- name: longterm-backtest-of-run
-- The backtest rows of an uplift run's projection: one past window x class x outcome.
SELECT outcome, "window", message_class, projected, projected_ci_lower, projected_ci_upper,
       realized, realized_se, difference, difference_se, naive, missed, flagged
FROM longterm_backtest
WHERE run_id = $run_id
ORDER BY outcome, message_class, "window";
