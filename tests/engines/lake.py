"""Small lakes for the engine tests: the simulated world as hive-partitioned Parquet."""

from __future__ import annotations

from pathlib import Path

import duckdb

TABLES = ("sends", "outcomes", "users", "assignments")
# the partition column of each table (a day, as a lake partitions logs); none for the rest
PARTITION = {"sends": "decided_at", "outcomes": "occurred_at"}


def write_lake(folder: Path, *, users: int = 1500, weeks: int = 2, seed: int = 7) -> dict[str, str]:
    """`make_world(...)` under `folder`/<table>/ (sends and outcomes partitioned by UTC
    day, written by DuckDB's COPY ... PARTITION_BY); table -> folder."""
    from upshot.simulate import make_world

    world = make_world(users=users, weeks=weeks, seed=seed)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    out = {}
    for table in TABLES:
        frame = getattr(world, table)  # noqa: F841 (read by DuckDB's replacement scan)
        target = folder / table
        column = PARTITION.get(table)
        if column:
            sql = (
                f"COPY (SELECT *, CAST({column} AS DATE) AS day FROM frame) TO '{target}' "
                "(FORMAT parquet, PARTITION_BY (day))"
            )
        else:
            target.mkdir(parents=True)
            sql = f"COPY (SELECT * FROM frame) TO '{target / 'part-0.parquet'}' (FORMAT parquet)"
        con.execute(sql)
        out[table] = str(target)
    con.close()
    return out


def duckdb_views(tables: dict[str, str]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB whose contract tables are views over the lake's files (the
    reference the Spark engine is compared with: the same files, the same statement)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for table, path in tables.items():
        con.execute(
            f"CREATE VIEW {table}_files AS SELECT * FROM "
            f"read_parquet('{path}/**/*.parquet', hive_partitioning = true)"
        )
        names = [r[0] for r in con.execute(f"DESCRIBE {table}_files").fetchall()]
        columns = "*"
        if table == "users":
            # covariates sorted by name after user_id, as `load` and the lake views store them
            rest = sorted(n for n in names if n not in ("user_id", "load_id"))
            columns = ", ".join(f'"{n}"' for n in ["user_id", *rest])
            columns += ", load_id" if "load_id" in names else ", NULL::BIGINT AS load_id"
        con.execute(f"CREATE VIEW {table} AS SELECT {columns} FROM {table}_files")
    return con
