-- Writing `upshot uplift`'s long-term projections (tables in migrations/010_longterm.sql).

-- name: insert-estimates
-- Append a run's projections from the registered relation `new_projections` (by name).
INSERT INTO longterm_estimates BY NAME
SELECT *, $run_id AS run_id, $week AS week, now() AS created_at
FROM new_projections;

-- name: insert-backtest
-- Append a run's backtest rows from the registered relation `new_backtest` (by name).
INSERT INTO longterm_backtest BY NAME
SELECT *, $run_id AS run_id
FROM new_backtest;
