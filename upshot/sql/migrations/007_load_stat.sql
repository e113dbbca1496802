-- Absolute path, size and modification time of each loaded local file, so that a rerun
-- over a folder of partitions skips the ones it has seen without reading them again.
ALTER TABLE _loads ADD COLUMN IF NOT EXISTS file_path VARCHAR;
ALTER TABLE _loads ADD COLUMN IF NOT EXISTS file_size BIGINT;
ALTER TABLE _loads ADD COLUMN IF NOT EXISTS file_mtime_ns BIGINT;
