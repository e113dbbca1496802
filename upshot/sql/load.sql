-- name: fingerprint-seen
-- Has a file with this content been loaded into this table before?
SELECT count(*) FROM _loads WHERE fingerprint = ? AND table_name = ?;

-- name: quarantine-staged
-- Move the rows that failed validation to quarantine (load id, source, table bound).
INSERT INTO quarantine
SELECT ?, ?, ?, _row, _fail.column, _fail.reason, _fail.raw FROM _bad;

-- name: stage-reasons
-- Failed rows of the file by reason.
SELECT _fail.reason, count(*) FROM _bad GROUP BY 1 ORDER BY 1;

-- name: seen-stats
-- The files (absolute path, size, mtime) loaded into this table before: one read per load,
-- not one query per file of a deep partition tree.
SELECT file_path, file_size, file_mtime_ns FROM _loads
WHERE table_name = ? AND file_path IS NOT NULL;

-- name: record-load
-- The load journal: one row per file that loaded.
INSERT INTO _loads (load_id, fingerprint, source, table_name, rows_read, rows_accepted,
                    duplicates_skipped, rows_quarantined, loaded_at,
                    file_path, file_size, file_mtime_ns)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, now(), ?, ?, ?);

-- name: record-mode
-- How the file loaded (append | replace) and its timestamps without a zone, by load id.
UPDATE _loads SET mode = ?, naive_timestamps = ? WHERE load_id = ?;
