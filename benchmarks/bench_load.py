"""`upshot load` against a bare DuckDB load of the same file, same machine, same run.

    python benchmarks/bench_load.py [--rows 2000000 10000000] [--repeat 3] [--dir bench_out]
        [--formats parquet csv]

Each variant runs in its own process and reports its own peak RSS (VmHWM: `ru_maxrss`
would include this parent's peak from writing the inputs, see `_peak.py`); the parent
prints its own peak beside them. The bare baseline is
`CREATE TABLE AS SELECT * FROM read_parquet(...)` (and `read_csv`): no validation, no
quarantine, no dedupe, no journal, which is what upshot adds. The two run interleaved
(bare, upshot, bare, ...), `--repeat` times each, at every `--rows` size for Parquet and
CSV; it prints min and median seconds, the ratios and each contender's peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _peak import inherited_mb, peak_mb  # benchmarks/ is on sys.path: the script's folder

CHILD = "--child"


def make_inputs(folder: Path, rows: int) -> dict[str, Path]:
    import duckdb

    folder.mkdir(parents=True, exist_ok=True)
    paths = {"parquet": folder / f"sends_{rows}.parquet", "csv": folder / f"sends_{rows}.csv"}
    select = (
        "SELECT 's' || i AS send_id, 'u' || (hash(i) % 5000000) AS user_id, "
        "'class_' || (i % 8) AS message_class, "
        "CASE i % 4 WHEN 0 THEN 'push' WHEN 1 THEN 'email' WHEN 2 THEN 'in_app' "
        "ELSE 'whatsapp' END AS channel, "
        "TIMESTAMPTZ '2026-11-16 00:00:00+00' + to_seconds(i % 604800) AS decided_at, "
        "hash(i) % 10 < 7 AS treated, 0.05 + (hash(i) % 90) / 100.0 AS propensity, "
        "hash(i) % 10 < 3 AS randomized, NULL::VARCHAR AS campaign_id, "
        f"NULL::VARCHAR AS experiment_id, NULL::VARCHAR AS variant FROM range({rows}) t(i)"
    )
    with duckdb.connect() as con:
        for fmt, path in paths.items():
            if not path.exists():
                options = "(FORMAT parquet)" if fmt == "parquet" else "(HEADER)"
                con.execute(f"COPY ({select}) TO '{path}' {options}")
    return paths


def child(variant: str, fmt: str, path: str, db: str, memory_limit: str) -> None:
    started, cpu = time.perf_counter(), time.process_time()
    if variant == "upshot":
        from upshot.config import Config, Warehouse
        from upshot.load import load

        config = Config(warehouse=Warehouse(memory_limit=memory_limit, temp_directory=db + ".tmp"))
        report = load(db, "sends", [path], config=config)
        rows = report.files[0].rows_accepted
    else:
        import duckdb

        con = duckdb.connect(db)
        con.execute(f"SET memory_limit = '{memory_limit}'")
        reader = "read_parquet" if fmt == "parquet" else "read_csv"
        con.execute(f"CREATE TABLE sends AS SELECT * FROM {reader}('{path}')")
        rows = con.execute("SELECT count(*) FROM sends").fetchone()[0]  # type: ignore[index]
        con.close()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu,  # every thread's, user + system: what a busy machine distorts least
                "rows": rows,
                "peak_mb": peak_mb(),
                "ru_maxrss_mb": inherited_mb(),
            }
        )
    )


def run(variant: str, fmt: str, path: Path, folder: Path, memory_limit: str) -> dict[str, float]:
    db = folder / f"{variant}_{fmt}.duckdb"
    for stale in folder.glob(f"{db.name}*"):
        stale.unlink()
    out = subprocess.run(
        [sys.executable, __file__, CHILD, variant, fmt, str(path), str(db), memory_limit],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(
    fmt: str, path: Path, folder: Path, memory_limit: str, repeat: int
) -> dict[str, list[dict[str, float]]]:
    """Each contender `repeat` times, interleaved (bare, upshot, bare, ...) so that the
    machine's load and the page cache favour neither."""
    runs: dict[str, list[dict[str, float]]] = {"bare": [], "upshot": []}
    for _ in range(repeat):
        for variant, results in runs.items():
            results.append(run(variant, fmt, path, folder, memory_limit))
    return runs


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == CHILD:
        child(*sys.argv[2:7])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[2_000_000, 10_000_000])
    parser.add_argument("--memory-limit", default="1GB")
    parser.add_argument("--dir", type=Path, default=Path("bench_out"))
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender (>= 3)")
    parser.add_argument("--formats", nargs="+", default=["parquet", "csv"])
    args = parser.parse_args()
    print(f"DuckDB memory_limit {args.memory_limit}; {args.repeat} interleaved runs each")
    print(
        "each variant runs in a fresh process and reports its own peak (VmHWM); "
        "this process writes the inputs"
    )
    print(
        f"{'rows':>11} {'format':8} {'variant':8} {'min s':>7} {'median s':>8} "
        f"{'rows/s':>12} {'peak MB':>8} {'min cpu s':>9} {'med cpu s':>9}"
    )
    for rows in args.rows:
        paths = make_inputs(args.dir, rows)
        for fmt, path in paths.items():
            if fmt not in args.formats:
                continue
            runs = compare(fmt, path, args.dir, args.memory_limit, args.repeat)
            stats = {}
            for variant, results in runs.items():
                seconds = [r["seconds"] for r in results]
                cpus = [r["cpu"] for r in results]
                low, mid = min(seconds), statistics.median(seconds)
                cpu_low, cpu_mid = min(cpus), statistics.median(cpus)
                peak = max(r["peak_mb"] for r in results)
                stats[variant] = (low, mid, cpu_low, cpu_mid)
                rate = results[0]["rows"] / low
                print(
                    f"{rows:11,} {fmt:8} {variant:8} {low:7.2f} {mid:8.2f} {rate:12,.0f} "
                    f"{peak:8.0f} {cpu_low:9.2f} {cpu_mid:9.2f}"
                )
            up, bare = stats["upshot"], stats["bare"]
            print(
                f"{rows:11,} {fmt:8} ratio upshot/bare = {up[0] / bare[0]:.2f}x (min), "
                f"{up[1] / bare[1]:.2f}x (median)  (target <= 1.5x); CPU "
                f"{up[2] / bare[2]:.2f}x (min), {up[3] / bare[3]:.2f}x (median); "
                f"load average {os.getloadavg()[0]:.1f}"
            )
    print(f"this process (wrote the inputs): peak RSS {peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
