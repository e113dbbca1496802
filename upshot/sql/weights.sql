-- Statements of `upshot weights`: the uplift run to read, and the journal of exports.

-- name: latest-uplift-run
-- The newest uplift run with estimates, skipping runs still going or that failed.
SELECT e.run_id
FROM uplift_estimates AS e
LEFT JOIN runs AS r USING (run_id)
WHERE r.status IS NULL OR (r.status <> 'running' AND r.status NOT LIKE 'failed%')
GROUP BY e.run_id
ORDER BY max(e.created_at) DESC, e.run_id DESC
LIMIT 1;

-- name: run-estimates
-- Every estimate of one uplift run, in a stable order.
SELECT message_class, channel, objective, segment, estimator, week, ate, ate_se,
       ate_ci_lower, ate_ci_upper, n_treated, n_control, refute_passed, status, created_at
FROM uplift_estimates
WHERE run_id = $run_id
ORDER BY message_class, segment, objective;

-- name: run-covariance
-- The joint covariance of the ATE estimates of one run, per class and segment.
SELECT message_class, segment, objective_a, objective_b, covariance
FROM uplift_covariance
WHERE run_id = $run_id
ORDER BY message_class, segment, objective_a, objective_b;

-- name: run-info
-- The registry entry of one run (absent for runs made before the registry).
SELECT inputs_fingerprint, seed, details
FROM runs
WHERE run_id = $run_id;

-- name: decision-span
-- First and last decision of some classes, when the run names no window.
SELECT min(decided_at) AS first_decision, max(decided_at) AS last_decision
FROM sends
WHERE list_contains($classes, message_class);

-- name: channel-reach
-- Per channel in the window: messages sent and distinct users decided on, for the derived
-- opt-out rate (expected future sends per user).
SELECT channel,
       count(*) FILTER (WHERE treated) AS sends,
       count(DISTINCT user_id) AS users
FROM sends
WHERE decided_at >= CAST($start AS TIMESTAMPTZ) AND decided_at < CAST($end AS TIMESTAMPTZ)
GROUP BY channel
ORDER BY channel;

-- name: insert-weight-version
-- One published (or refused) export.
INSERT INTO weight_versions VALUES (
    $weights_version, $directory, $run_id, $uplift_run_id, now(), $sha256, $previous_version,
    $share_moved, $breaker_tripped, $forced, $n_classes, $n_positive, $details
);

-- name: weight-versions
-- The export journal, newest first.
SELECT weights_version, exported_at, uplift_run_id, previous_version, share_moved,
       breaker_tripped, forced, n_classes, n_positive, directory
FROM weight_versions
ORDER BY exported_at DESC;

-- name: weight-version-recorded
-- Does the warehouse know this published version (by name and checksum)?
SELECT count(*) FROM weight_versions WHERE weights_version = $weights_version AND sha256 = $sha256;
