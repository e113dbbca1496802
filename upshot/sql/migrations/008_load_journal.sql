-- The load journal also says how each file loaded (append, or replace for a users
-- snapshot) and how many of its timestamps carried no zone (read in load.naive_timezone),
-- which `upshot check` reports.
ALTER TABLE _loads ADD COLUMN IF NOT EXISTS mode VARCHAR;
ALTER TABLE _loads ADD COLUMN IF NOT EXISTS naive_timestamps BIGINT;
