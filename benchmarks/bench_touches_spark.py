"""Touch journeys (`touches.sql` journey-aggregates) on DuckDB and on Spark, same lake.

    python benchmarks/bench_touches_spark.py [--journeys 1000000] [--repeats 3] [--dir bench_out]

The synthetic journeys of `bench_touches.py` (one per user: 1-4 treated sends over 4 days
on five channels, a conversion within 3 days of the last send for one user in ten),
written as a Parquet lake (`sends/`, `outcomes/`). Each run is a fresh process, the
engines interleaved (DuckDB, Spark, DuckDB, ...): DuckDB over views of the files with its
hash buckets, Spark (local[2], driver memory 1g) in one pass. Printed per engine: the
journeys' time (min and median), Spark's session start apart, the Python driver's peak
RSS and the Spark JVM's; then the ratio, and whether both engines gave the same path
table (to 1e-9).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _peak import peak_mb, spark_jvm_peak_mb  # benchmarks/ is on sys.path

CHILD = "--child"
CHANNELS = "['push', 'email', 'in_app', 'whatsapp', 'sms']"


def build(lake: Path, journeys: int) -> float:
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SELECT setseed(0.42)")
    con.execute(
        f"""
        CREATE TABLE sends AS
        WITH users AS (
            SELECT range AS u, 1 + (hash(range) % 4)::INT AS touches FROM range({journeys})
        ),
        touches AS (SELECT u, unnest(range(touches)) AS k FROM users)
        SELECT
            's' || u || '-' || k AS send_id, 'u' || u AS user_id,
            channel || '_' || (hash(u, k) % 2)::VARCHAR AS message_class, channel,
            TIMESTAMPTZ '2026-11-16 00:00:00+00' + to_seconds(random() * 4 * 86400)
                AS decided_at,
            true AS treated
        FROM (SELECT u, k, {CHANNELS}[1 + (hash(k, u) % 5)::INT] AS channel FROM touches)
        """
    )
    con.execute(
        """
        CREATE TABLE outcomes AS
        SELECT user_id, max(decided_at) + to_seconds(random() * 3 * 86400) AS occurred_at,
               'subscription_start' AS event, 1.0 + (hash(user_id) % 50) AS value,
               'c' || user_id AS event_id
        FROM sends WHERE hash(user_id) % 10 = 0 GROUP BY user_id
        """
    )
    for table in ("sends", "outcomes"):
        (lake / table).mkdir(parents=True)
        con.execute(f"COPY {table} TO '{lake / table / 'part-0.parquet'}' (FORMAT parquet)")
    con.close()
    return time.perf_counter() - started


def run(engine: str, lake: str) -> dict[str, Any]:
    import duckdb

    from upshot.attribution.touches.attribute import warehouse_journeys
    from upshot.config import Config

    tables = {t: str(Path(lake) / t) for t in ("sends", "outcomes")}
    out: dict[str, Any] = {"startup_s": 0.0}
    con: Any
    if engine == "spark":
        from upshot.engines import open_spark

        started = time.perf_counter()
        con = open_spark(Config(), tables)
        con.fetch("SELECT 1 AS one", {}, "warm-up")  # the session starts here
        out["startup_s"] = time.perf_counter() - started
    else:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        for table, folder in tables.items():
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{folder}/*.parquet')")
    started = time.perf_counter()
    journeys = warehouse_journeys(con, ["subscription_start"], lookback_days=7.0)
    out["seconds"] = time.perf_counter() - started
    table = journeys.paths
    out["journeys"] = float(table.total_conversions + table.total_nulls)
    rows = zip(table.paths, table.conversions, table.nulls, table.values, strict=True)
    out["table"] = {" > ".join(p): [float(c), float(n), float(v)] for p, c, n, v in rows}
    out["python_mb"] = peak_mb()
    out["jvm_mb"] = spark_jvm_peak_mb()
    return out


def spawn(engine: str, lake: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, CHILD, engine, str(lake)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def same(a: dict[str, list[float]], b: dict[str, list[float]]) -> bool:
    import math

    return a.keys() == b.keys() and all(
        math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
        for k in a
        for x, y in zip(a[k], b[k], strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default="bench_out")
    args = parser.parse_args()
    lake = Path(args.dir) / f"touches_lake_{args.journeys}"
    if not lake.exists():
        print(f"built the lake in {build(lake, args.journeys):.1f}s", file=sys.stderr)
    runs: dict[str, list[dict[str, Any]]] = {"duckdb": [], "spark": []}
    for _ in range(args.repeats):
        for engine in runs:
            runs[engine].append(spawn(engine, lake))
    print(f"journeys: {runs['duckdb'][0]['journeys']:,.0f}, repeats {args.repeats}, interleaved")
    print("engine  min_s  median_s  runs_s  startup_s  python_peak_mb  jvm_peak_mb")
    best = {}
    for engine, done in runs.items():
        times = [r["seconds"] for r in done]
        best[engine] = min(times)
        print(
            f"{engine:6s}  {min(times):5.1f}  {statistics.median(times):8.1f}  "
            f"{','.join(f'{t:.1f}' for t in times)}  "
            f"{statistics.median(r['startup_s'] for r in done):9.1f}  "
            f"{max(r['python_mb'] for r in done):14.0f}  {max(r['jvm_mb'] for r in done):11.0f}"
        )
    print(f"spark / duckdb (min): {best['spark'] / best['duckdb']:.1f}x")
    equal = all(same(r["table"], runs["duckdb"][0]["table"]) for rs in runs.values() for r in rs)
    print(f"same path table on every run (1e-9): {equal}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == CHILD:
        print(json.dumps(run(sys.argv[2], sys.argv[3])))
    else:
        main()
