-- The weekly job's journal (`upshot run`): one row per run of a week; `current` marks the
-- run whose outputs are that week's. A rerun inserts its row and moves `current` in one
-- transaction, so readers see either the old outputs or the new ones, never a mix.
CREATE TABLE IF NOT EXISTS weekly_runs (
    week VARCHAR NOT NULL,            -- ISO week of the decisions, e.g. 2026-W47 (UTC weeks)
    run_id VARCHAR NOT NULL,          -- runs.run_id of the `upshot run` that wrote it
    status VARCHAR NOT NULL,          -- ok | partial | failed
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    data_as_of TIMESTAMPTZ,           -- after the load stage: later loads are late data
    uplift_run_id VARCHAR,            -- the estimates the week's report and weights use
    experiment_runs JSON,             -- {experiment_id: run_id}
    weights_version VARCHAR,
    report_dir VARCHAR,
    stages JSON,                      -- per stage: status, seconds, counts, failures
    current BOOLEAN NOT NULL
);
-- The alerts of each weekly run, also written to reports/<week>/alerts.json.
CREATE TABLE IF NOT EXISTS alerts (
    run_id VARCHAR NOT NULL,          -- weekly_runs.run_id
    week VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,            -- uplift_negative | optout_harm | reach_drop | srm | ...
    severity VARCHAR NOT NULL,        -- critical | warning | info
    subject VARCHAR NOT NULL,         -- the class, channel, experiment or day concerned
    message VARCHAR NOT NULL,
    value DOUBLE,
    threshold DOUBLE
);
