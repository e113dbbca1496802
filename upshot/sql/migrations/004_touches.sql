-- Touch-based attribution per run x dimension (channel or class) x item x method, written
-- by `upshot touches` from the warehouse. `method` is first_touch | last_touch | linear |
-- time_decay | markov | shapley, or 'causal' for the incremental conversions of the same
-- period from the uplift estimates (uplift x treated sends) with their CI.
CREATE TABLE IF NOT EXISTS touch_credits (
    run_id VARCHAR NOT NULL,
    week VARCHAR,                 -- ISO week of the conversions, e.g. 2026-W47 (NULL: no --week)
    period_start TIMESTAMPTZ,     -- NULL: unbounded
    period_end TIMESTAMPTZ,       -- exclusive; NULL: unbounded
    dimension VARCHAR NOT NULL,   -- channel | class
    item VARCHAR NOT NULL,        -- the channel or message class credited
    method VARCHAR NOT NULL,
    conversions DOUBLE,           -- credited (or incremental) conversions; NaN when status is not 'ok'
    value DOUBLE,                 -- credited conversion value (NULL for 'causal')
    share DOUBLE,                 -- share of the method's total
    se DOUBLE,                    -- standard error (0 for exact methods)
    ci_lower DOUBLE,              -- 'causal' only
    ci_upper DOUBLE,
    status VARCHAR NOT NULL,      -- ok | insufficient_data | no_uplift_run | <uplift status>
    total_conversions DOUBLE,     -- touched conversions of the period
    lookback VARCHAR,             -- e.g. 7d
    created_at TIMESTAMPTZ NOT NULL,
    details JSON
);
