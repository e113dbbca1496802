-- Issue 16: the projected long-term effect of each class in a window (surrogate index)
-- and the backtest rows it was judged by. Written by `upshot uplift` (warehouse path).
CREATE TABLE IF NOT EXISTS longterm_estimates (
    run_id VARCHAR NOT NULL,
    week VARCHAR,                 -- ISO week of the decisions projected
    message_class VARCHAR NOT NULL,
    channel VARCHAR,
    outcome VARCHAR NOT NULL,     -- a [longterm.outcomes] name, e.g. retention_180d
    estimate DOUBLE,              -- per decision, in the outcome's units; NaN unless ok
    se DOUBLE,                    -- includes the error of h (Chen & Ritzwoller)
    ci_lower DOUBLE,
    ci_upper DOUBLE,
    n_treated BIGINT,
    n_control BIGINT,
    n_history BIGINT,
    status VARCHAR NOT NULL,      -- ok | insufficient_data
    backtest VARCHAR NOT NULL,    -- ok | surrogacy_violated | not_backtested
    details JSON,
    created_at TIMESTAMPTZ NOT NULL
);
-- One past window x class x outcome of the backtest of a run.
CREATE TABLE IF NOT EXISTS longterm_backtest (
    run_id VARCHAR NOT NULL,
    outcome VARCHAR NOT NULL,
    "window" VARCHAR NOT NULL,
    message_class VARCHAR NOT NULL,
    projected DOUBLE,
    projected_ci_lower DOUBLE,
    projected_ci_upper DOUBLE,
    realized DOUBLE,
    realized_se DOUBLE,
    difference DOUBLE,
    difference_se DOUBLE,
    naive DOUBLE,
    missed BOOLEAN,
    flagged BOOLEAN               -- the class is flagged for this outcome (pooled over windows)
);
