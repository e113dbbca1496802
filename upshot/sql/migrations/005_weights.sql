-- The journal of published weight files (`upshot weights export`). The files under the
-- weights directory are the source of truth; this table records who published what, from
-- which uplift run, how far it drifted from the previous version and whether the circuit
-- breaker was overridden with --force.
CREATE TABLE IF NOT EXISTS weight_versions (
    weights_version VARCHAR NOT NULL,
    directory VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,          -- the export's run (runs.run_id)
    uplift_run_id VARCHAR NOT NULL,   -- the estimates it was made from
    exported_at TIMESTAMPTZ NOT NULL,
    sha256 VARCHAR NOT NULL,          -- of <weights_version>.json
    previous_version VARCHAR,
    share_moved DOUBLE,               -- share of compared classes whose weight moved
    breaker_tripped BOOLEAN NOT NULL,
    forced BOOLEAN NOT NULL,
    n_classes INTEGER NOT NULL,
    n_positive INTEGER NOT NULL,      -- classes with a positive weight
    details JSON                      -- drift summary and the off-policy estimate
);
