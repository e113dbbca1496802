-- One row per run x experiment x metric x treatment arm, written by `upshot experiments
-- analyze` and `decide` (warehouse path). Numbers that could not be estimated are NULL
-- (NaN in Python) and `status` says why. Read by the weekly report.
CREATE TABLE IF NOT EXISTS experiment_results (
    run_id VARCHAR NOT NULL,
    experiment_id VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    arm VARCHAR NOT NULL,               -- the treatment arm compared with control_arm
    control_arm VARCHAR NOT NULL,
    kind VARCHAR,                       -- mean | proportion | ratio
    role VARCHAR,                       -- success | guardrail | deterioration
    control DOUBLE,                     -- control arm's mean (ratio: sum num / sum den)
    treatment DOUBLE,                   -- treatment arm's mean
    effect DOUBLE,                      -- treatment - control, adjusted when covariates are used
    effect_se DOUBLE,
    effect_ci_lower DOUBLE,
    effect_ci_upper DOUBLE,
    rel_effect DOUBLE,                  -- treatment / control - 1 (a fraction)
    rel_effect_se DOUBLE,
    rel_effect_ci_lower DOUBLE,
    rel_effect_ci_upper DOUBLE,
    statistic DOUBLE,                   -- t or z
    df DOUBLE,                          -- degrees of freedom (NULL for normal tests)
    pvalue DOUBLE,                      -- two-sided
    pvalue_adj DOUBLE,                  -- after `correction` across metrics and arms
    correction VARCHAR,
    method VARCHAR NOT NULL,            -- welch_t | z | proportion_z | cuped_welch_t | ...
    status VARCHAR NOT NULL,            -- ok | insufficient_data | zero_variance | ...
    n_control BIGINT,
    n_treatment BIGINT,
    variance_reduction DOUBLE,          -- 1 - var(adjusted effect) / var(unadjusted)
    covariates VARCHAR,                 -- comma-separated covariates of the adjustment
    sequential BOOLEAN,                 -- confidence sequence instead of a fixed-horizon CI
    srm_pvalue DOUBLE,
    srm_status VARCHAR,
    verdict VARCHAR,                    -- decide only: ship | no_ship | invalid (per arm)
    reason VARCHAR,                     -- decide only: this metric's part of the verdict
    created_at TIMESTAMPTZ NOT NULL,
    details JSON
);
