"""Benchmark: what Spark itself needs for the experiments pass, against DuckDB on the same file.

    .venv/bin/python benchmarks/bench_spark_floor.py --data /tmp/u.parquet --repeat 3

The experiments pass is one aggregate of ~160 sums, squares, cross-products and counts
per arm (20 metrics). `bench_experiments.py --engine spark` times upshot's statement; this
script times Spark's own cost for a pass of that size with no upshot SQL in it: synthetic
aggregates over the benchmark file's 28 numeric columns (SUM x, SUM x*x, SUM x*y, MIN,
MAX, COUNT, cycling), `k` of them, for k in 28, 84 and 168,

- grouped: `SELECT variant, <k aggregates> FROM t GROUP BY variant` (what the pass is);
- no key: `SELECT <k aggregates> FROM t` (all arms together: Spark keeps the buffers in
  fields rather than in its hash map's rows, the cheapest form an aggregate takes),

each on DuckDB (fresh connection per run) and on Spark (one local[2] session, 1g driver,
timed after a warm-up, as a long-lived session runs it), plus upshot's DuckDB `analyze`
of the same file. It prints each one's min and median seconds, Spark / DuckDB for the same
statement, and Spark / upshot-on-DuckDB: if even Spark's grouped pass of 28 plain sums is
several times DuckDB's whole analysis, no rewrite of upshot's statement brings the Spark
engine within a smaller factor on this machine.

Writes the file with `bench_experiments.make_file` when `--data` does not exist.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from bench_experiments import CUPED, PLAIN, RATIOS, _analyze, make_file

COLUMNS = [*PLAIN, *CUPED, *(f"pre_{c}" for c in CUPED), *(x for pair in RATIOS for x in pair)]
SIZES = (28, 84, 168)


def aggregates(k: int) -> str:
    """k aggregates over the 28 columns, cycling through six kinds."""
    out = []
    for j in range(k):
        c, other = COLUMNS[j % len(COLUMNS)], COLUMNS[(j + 1) % len(COLUMNS)]
        kind = ["SUM({c})", "SUM({c}*{c})", "SUM({c}*{o})", "MIN({c})", "MAX({c})", "COUNT({c})"]
        out.append(kind[(j // len(COLUMNS)) % 6].format(c=c, o=other) + f" AS a{j}")
    return ", ".join(out)


def statements(table: str) -> dict[str, str]:
    out = {}
    for k in SIZES:
        out[f"grouped_{k}"] = f"SELECT variant, {aggregates(k)} FROM {table} GROUP BY variant"
        out[f"nokey_{k}"] = f"SELECT {aggregates(k)} FROM {table}"
    return out


def timed(fn: Any, repeat: int) -> dict[str, float]:
    seconds = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - t)
    return {"min": round(min(seconds), 3), "median": round(statistics.median(seconds), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="written there if absent (default: a temp file)")
    parser.add_argument("--users", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_spark_floor_") as tmp:
        data = args.data or Path(tmp) / "users.parquet"
        if not data.exists():
            make_file(data, args.users, "double")
        run(str(data), args.repeat, args.json)


def run(path: str, repeat: int, as_json: bool) -> None:
    import duckdb

    from upshot.engines.spark import spark_session

    results: dict[str, dict[str, Any]] = {}
    results["upshot_duckdb_analyze"] = timed(lambda: _analyze(path), repeat)
    duck = statements(f"read_parquet('{path}')")
    for name, sql in duck.items():
        results[f"duckdb_{name}"] = timed(lambda s=sql: duckdb.connect().sql(s).fetchall(), 3)
    spark = spark_session("local[2]", "1g")
    spark.read.parquet(path).createOrReplaceTempView("t")
    for name, sql in statements("t").items():
        spark.sql(sql).collect()  # warm-up: JIT, code generation, the file's listing
        results[f"spark_{name}"] = timed(lambda s=sql: spark.sql(s).collect(), repeat)
    analyze = results["upshot_duckdb_analyze"]["min"]
    for name in duck:
        entry = results[f"spark_{name}"]
        entry["x_duckdb_same"] = round(entry["min"] / results[f"duckdb_{name}"]["min"], 2)
        entry["x_upshot_duckdb_analyze"] = round(entry["min"] / analyze, 2)
    if as_json:
        print(json.dumps({"file": path, "results": results}, indent=2))
        return
    print(f"{path}: min / median seconds; Spark local[2] warm, DuckDB fresh connection")
    for name, r in results.items():
        extra = ""
        if "x_duckdb_same" in r:
            extra = f"   {r['x_duckdb_same']}x DuckDB's same, "
            extra += f"{r['x_upshot_duckdb_analyze']}x upshot's DuckDB analyze"
        print(f"  {name:28s} {r['min']:8.2f} {r['median']:8.2f}{extra}")


if __name__ == "__main__":
    main()
