-- The input contract's tables, the load journal and quarantine. No PRIMARY KEY on the
-- event tables: at billions of rows the index costs more memory than dedupe-at-load.
CREATE TABLE IF NOT EXISTS sends (
    send_id VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL,
    message_class VARCHAR NOT NULL,
    channel VARCHAR NOT NULL,
    decided_at TIMESTAMPTZ NOT NULL,
    treated BOOLEAN NOT NULL,
    propensity DOUBLE,
    randomized BOOLEAN,
    campaign_id VARCHAR,
    experiment_id VARCHAR,
    variant VARCHAR,
    load_id VARCHAR
);
CREATE TABLE IF NOT EXISTS outcomes (
    user_id VARCHAR NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    event VARCHAR NOT NULL,
    value DOUBLE NOT NULL,
    event_id VARCHAR,
    send_id VARCHAR,
    load_id VARCHAR
);
-- users grows a column for every covariate a loaded file brings
CREATE TABLE IF NOT EXISTS users (
    user_id VARCHAR NOT NULL,
    load_id VARCHAR
);
CREATE TABLE IF NOT EXISTS assignments (
    experiment_id VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL,
    variant VARCHAR NOT NULL,
    assigned_at TIMESTAMPTZ NOT NULL,
    load_id VARCHAR
);
CREATE TABLE IF NOT EXISTS _loads (
    load_id VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    table_name VARCHAR NOT NULL,
    rows_read BIGINT NOT NULL,
    rows_accepted BIGINT NOT NULL,
    duplicates_skipped BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    load_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    table_name VARCHAR NOT NULL,
    row_number BIGINT NOT NULL,
    column_name VARCHAR,
    reason VARCHAR NOT NULL,
    raw_value VARCHAR
);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR NOT NULL,
    command VARCHAR NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    status VARCHAR NOT NULL,
    tool_version VARCHAR NOT NULL,
    config_hash VARCHAR NOT NULL,
    inputs_fingerprint VARCHAR,
    seed BIGINT,
    details JSON
);
