-- Causal uplift per run x message class x objective x segment ('all' for the overall
-- effect). Written by `upshot uplift`; read by weights, the weekly report and touches.
CREATE TABLE IF NOT EXISTS uplift_estimates (
    run_id VARCHAR NOT NULL,
    week VARCHAR,                 -- ISO week of the decisions, e.g. 2026-W47 (NULL: all data)
    message_class VARCHAR NOT NULL,
    channel VARCHAR,
    objective VARCHAR NOT NULL,
    segment VARCHAR NOT NULL,     -- 'all' or 'column=value'
    estimator VARCHAR NOT NULL,   -- linear_dml | dr_learner | causal_forest
    design VARCHAR,               -- randomized | logged_propensity | estimated_propensity
    ate DOUBLE,                   -- NaN when status is not 'ok'
    ate_se DOUBLE,
    ate_ci_lower DOUBLE,
    ate_ci_upper DOUBLE,
    naive_effect DOUBLE,          -- sent minus held-out mean, no adjustment
    n_treated BIGINT,
    n_control BIGINT,
    refute_placebo DOUBLE,        -- effect under a placebo treatment (should be ~0)
    refute_random_cause DOUBLE,   -- effect with a random common cause added
    refute_subset DOUBLE,         -- effect on a random data subset
    refute_passed BOOLEAN,
    qini DOUBLE,                  -- held-out Qini coefficient of the CATE model
    status VARCHAR NOT NULL,      -- ok | insufficient_data | no_overlap | failed:<reason>
    created_at TIMESTAMPTZ NOT NULL,
    details JSON,
    nuisance VARCHAR,             -- lightgbm | linear
    pvalue DOUBLE,                -- two-sided, H0: ate = 0
    auuc DOUBLE,                  -- held-out area under the TOC (uplift) curve
    calibration DOUBLE,           -- held-out calibration R² of the CATE model
    robustness_value DOUBLE,      -- confounding strength that would move the CI to 0
    seed BIGINT
);
-- The covariance between the ATEs of two objectives of one class and segment, so that a
-- value combining objectives gets an honest CI.
CREATE TABLE IF NOT EXISTS uplift_covariance (
    run_id VARCHAR NOT NULL,
    message_class VARCHAR NOT NULL,
    segment VARCHAR NOT NULL,
    objective_a VARCHAR NOT NULL,
    objective_b VARCHAR NOT NULL,
    covariance DOUBLE
);
