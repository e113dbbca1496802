"""Lake mode against a loaded warehouse: the decision frame of `upshot uplift` and the
whole `upshot uplift` command, on the same simulated world.

    .venv/bin/python benchmarks/bench_lake.py                        # 20k users, 2 weeks
    .venv/bin/python benchmarks/bench_lake.py --users 100000 --repeats 5 --no-cli

The world is simulated, loaded into a warehouse, and exported to a lake with
`upshot lake export` (sends and outcomes partitioned by ISO week). Stage `frame`:
`decision_frame` for the week on a read connection to the warehouse, then on one with the
lake attached (the validating views, dedupe window included), interleaved, in this
process. Stage `cli`: `upshot uplift --week W --class C` in a fresh process each
(warehouse, lake, warehouse, ...), cheap settings (linear nuisances, 2 folds, no
refutation), its peak RSS from /usr/bin/time when present. Prints sizes, every time, min
and median per contender, the ratio lake / warehouse of the minima, and the load average.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WEEK = "2026-W43"
CLASS = "new_release_push"
CHEAP = '[uplift]\nnuisance = "linear"\nfolds = 2\nsegments = []\n'


def _prepare(tmp: Path, users: int, weeks: int) -> tuple[Any, str, str]:
    from upshot.config import Config
    from upshot.lake_export import export
    from upshot.load import load
    from upshot.simulate import simulate

    simulate(tmp / "world", users=users, weeks=weeks, seed=1)
    config = Config()
    db = str(tmp / "loaded.duckdb")
    for table in ("users", "assignments", "sends", "outcomes"):
        name = f"{table}.parquet" if table in ("users", "assignments") else table
        load(db, table, [str(tmp / "world" / name)], config=config)
    export(config, db, str(tmp / "lake"))
    return config, db, str(tmp / "lake")


def _frame(config: Any, db: str, lake: str | None) -> tuple[float, int]:
    import dataclasses

    from upshot.attribution.uplift.frames import decision_frame
    from upshot.config import Lake
    from upshot.period import bounds
    from upshot.store import reading

    config = dataclasses.replace(config, lake=Lake(path=lake))
    start, end = bounds(WEEK)
    started = time.perf_counter()
    with reading(config, db) as con:
        rows = decision_frame(con, config, start=start, end=end).height
    return time.perf_counter() - started, rows


def _cli(tmp: Path, db: str, lake: str | None) -> tuple[float, float | None]:
    args = [sys.executable, "-m", "upshot", "--db", db]
    if lake:
        args += ["--lake", lake]
    args += ["uplift", "--week", WEEK, "--class", CLASS, "--no-refute", "--json"]
    timer = shutil.which("time")
    if timer:
        args = [timer, "-f", "%M", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    done = subprocess.run(args, cwd=tmp, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"uplift failed: {done.stderr[-500:]}")
    peak = float(done.stderr.strip().splitlines()[-1]) / 1024 if timer else None
    return seconds, peak


def _line(name: str, times: list[float]) -> str:
    shown = ", ".join(f"{t:.3f}" for t in times)
    return f"  {name:9} min {min(times):.3f}s  median {statistics.median(times):.3f}s  [{shown}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--weeks", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-cli", action="store_true", help="time the frame only")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="upshot-bench-lake-") as name:
        tmp = Path(name)
        (tmp / "upshot.toml").write_text(CHEAP, encoding="utf-8")
        started = time.perf_counter()
        config, db, lake = _prepare(tmp, args.users, args.weeks)
        files = sum(1 for _ in Path(lake).rglob("*.parquet"))
        print(
            f"world: {args.users:,} users, {args.weeks} weeks; loaded and exported in "
            f"{time.perf_counter() - started:.1f}s; lake: {files} files"
        )
        times: dict[str, list[float]] = {"warehouse": [], "lake": []}
        for _ in range(args.repeats):
            for side in times:
                seconds, rows = _frame(config, db, lake if side == "lake" else None)
                times[side].append(seconds)
        print(f"frame ({WEEK}, {rows:,} decisions, every class):")
        for side, values in times.items():
            print(_line(side, values))
        print(f"  ratio lake / warehouse (min): {min(times['lake']) / min(times['warehouse']):.2f}")
        if not args.no_cli:
            cli: dict[str, list[float]] = {"warehouse": [], "lake": []}
            peaks: dict[str, list[float]] = {"warehouse": [], "lake": []}
            for i in range(args.repeats):
                for side in cli:
                    fresh = str(tmp / f"fresh{i}.duckdb")
                    where = db if side == "warehouse" else fresh
                    seconds, peak = _cli(tmp, where, lake if side == "lake" else None)
                    cli[side].append(seconds)
                    if peak is not None:
                        peaks[side].append(peak)
            print(f"upshot uplift --week {WEEK} --class {CLASS} --no-refute (process each):")
            for side, values in cli.items():
                peak = f"  peak {max(peaks[side]):.0f} MB" if peaks[side] else ""
                print(_line(side, values) + peak)
            ratio = min(cli["lake"]) / min(cli["warehouse"])
            print(f"  ratio lake / warehouse (min): {ratio:.2f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"this process's peak RSS: {rss:.0f} MB; load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
