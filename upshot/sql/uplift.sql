-- Writing and reading `upshot uplift` results (tables in migrations/003_uplift.sql).

-- name: insert-estimates
-- Append a run's estimates from the registered relation `new_estimates` (columns by name).
INSERT INTO uplift_estimates BY NAME
SELECT *, $run_id AS run_id, $week AS week, $seed AS seed, now() AS created_at
FROM new_estimates;

-- name: insert-covariance
-- Append a run's joint covariances from the registered relation `new_covariance`.
INSERT INTO uplift_covariance BY NAME
SELECT *, $run_id AS run_id
FROM new_covariance;

-- name: estimates-of-run
-- One run's estimates, in the order they were written.
SELECT *
FROM uplift_estimates
WHERE run_id = $run_id
ORDER BY message_class, objective, segment = 'all' DESC, segment;
