-- Statements of `upshot experiments`. The per-metric parts of the sufficient-statistics
-- query are generated from the metric definitions (upshot/experiments/query.py) and
-- spliced in where a /*marker*/ stands; identifiers are quoted, values are bound.

-- name: list-experiments
-- Experiments in the warehouse: users per arm, first and last assignment.
SELECT experiment_id, variant, count(DISTINCT user_id) AS users,
       min(assigned_at) AS first_assigned, max(assigned_at) AS last_assigned
FROM assignments
GROUP BY experiment_id, variant
ORDER BY experiment_id, variant;

-- name: multi-arm-users
-- Users assigned to more than one arm of an experiment, per experiment.
SELECT experiment_id, count(*) AS users
FROM (
    SELECT experiment_id, user_id
    FROM assignments
    GROUP BY experiment_id, user_id
    HAVING count(DISTINCT variant) > 1
)
GROUP BY experiment_id;

-- name: experiment-exists
SELECT count(*) FROM assignments WHERE experiment_id = $experiment;

-- name: experiment-ids
-- Every experiment the assignments name, for errors that list the known ones.
SELECT DISTINCT experiment_id FROM assignments ORDER BY 1;

-- name: overlapping-experiments
-- Other experiments sharing users with this one, and how many.
SELECT b.experiment_id, count(DISTINCT b.user_id) AS users
FROM assignments a JOIN assignments b ON a.user_id = b.user_id
WHERE a.experiment_id = $experiment AND b.experiment_id <> $experiment
GROUP BY b.experiment_id
ORDER BY users DESC;

-- name: assigned-one
-- One row per user of one experiment: the arm, the first assignment and the arm count.
SELECT user_id, min(variant) AS variant, NULL::VARCHAR AS variant_b,
       min(assigned_at) AS assigned_at, count(DISTINCT variant) AS n_arms
FROM assignments
WHERE experiment_id = $experiment
GROUP BY user_id

-- name: assigned-pair
-- Users in both experiments (a 2x2 factorial); the window starts at the later assignment
-- so that both treatments are in force throughout it.
SELECT a.user_id, a.variant, b.variant AS variant_b,
       greatest(a.assigned_at, b.assigned_at) AS assigned_at,
       greatest(a.n_arms, b.n_arms) AS n_arms
FROM (
    SELECT user_id, min(variant) AS variant, min(assigned_at) AS assigned_at,
           count(DISTINCT variant) AS n_arms
    FROM assignments WHERE experiment_id = $experiment GROUP BY user_id
) a
JOIN (
    SELECT user_id, min(variant) AS variant, min(assigned_at) AS assigned_at,
           count(DISTINCT variant) AS n_arms
    FROM assignments WHERE experiment_id = $other GROUP BY user_id
) b ON a.user_id = b.user_id

-- name: per-user
-- One row per assigned user: arm, why excluded ('' if not), segment, and every metric
-- variable. Outcomes are joined only for users in exactly one arm, only for the events
-- and the time span some metric needs; each metric then filters its own window.
SELECT CASE WHEN a.n_arms = 1 THEN a.variant END AS variant,
       CASE WHEN a.n_arms = 1 THEN a.variant_b END AS variant_b,
       CASE WHEN a.n_arms > 1 THEN 'multi_arm' ELSE '' END AS exclusion,
       /*segment*/ AS segment
       /*metrics*/
FROM (/*assigned*/) a
/*segment_join*/
LEFT JOIN outcomes o
    ON o.user_id = a.user_id AND a.n_arms = 1
    AND o.occurred_at >= a.assigned_at - to_microseconds($max_pre_us)
    AND o.occurred_at <= a.assigned_at + to_microseconds($max_post_us)
    /*events*/
GROUP BY a.user_id, a.variant, a.variant_b, a.n_arms, segment

-- name: table-columns
-- The columns of a user-level input file.
SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM /*relation*/);

-- name: parquet-ranges
-- Each column's smallest and largest value over the file's row groups, from the Parquet
-- footers (no data is read); `complete` is false when some row group lacks statistics.
SELECT lower(path_in_schema) AS col,
       min(TRY_CAST(CASE stats_min_value WHEN 'false' THEN '0' WHEN 'true' THEN '1'
                    ELSE stats_min_value END AS DOUBLE)) AS lo,
       max(TRY_CAST(CASE stats_max_value WHEN 'false' THEN '0' WHEN 'true' THEN '1'
                    ELSE stats_max_value END AS DOUBLE)) AS hi,
       bool_and(stats_min_value IS NOT NULL OR stats_null_count = row_group_num_rows)
           AS complete
FROM parquet_metadata($path)
GROUP BY 1;

-- name: parquet-no-nulls
-- Whether each column's footers count no NULL in any row group (a missing count is not 0).
SELECT lower(path_in_schema) AS col, bool_and(coalesce(stats_null_count = 0, false)) AS none
FROM parquet_metadata($path)
GROUP BY 1;

-- name: insert-result
INSERT INTO experiment_results (
    run_id, experiment_id, metric, arm, control_arm, kind, role, control, treatment,
    effect, effect_se, effect_ci_lower, effect_ci_upper, rel_effect, rel_effect_se,
    rel_effect_ci_lower, rel_effect_ci_upper, statistic, df, pvalue, pvalue_adj,
    correction, method, status, n_control, n_treatment, variance_reduction, covariates,
    sequential, srm_pvalue, srm_status, verdict, reason, created_at, details
) VALUES (
    $run_id, $experiment_id, $metric, $arm, $control_arm, $kind, $role, $control,
    $treatment, $effect, $effect_se, $effect_ci_lower, $effect_ci_upper, $rel_effect,
    $rel_effect_se, $rel_effect_ci_lower, $rel_effect_ci_upper, $statistic, $df, $pvalue,
    $pvalue_adj, $correction, $method, $status, $n_control, $n_treatment,
    $variance_reduction, $covariates, $sequential, $srm_pvalue, $srm_status, $verdict,
    $reason, now(), $details
);

-- name: live-experiments
-- Experiments with users assigned before the week ends whose metric windows are still open
-- when it starts.
SELECT experiment_id, min(assigned_at) AS first_assigned, max(assigned_at) AS last_assigned,
       count(DISTINCT user_id) AS users
FROM assignments
GROUP BY 1
HAVING min(assigned_at) < $end AND max(assigned_at) + to_seconds($window_seconds) >= $start
ORDER BY 1;
