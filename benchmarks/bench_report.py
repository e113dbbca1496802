"""The weekly report's data step against a pandas baseline, same warehouse, same run.

    python benchmarks/bench_report.py [--users 50000] [--weeks 2] [--dir bench_out]

upshot's `report_data` asks DuckDB for aggregates only (sends and users per class and
week, rows per day, reachability per channel and week, the files behind the week): no
row per user leaves the database. The baseline does what a notebook would: fetch the
week's sends and all outcomes and users as DataFrames and aggregate them with pandas.
Both compute the same counts (checked). Each side runs in its own process so its peak
RSS is its own. The full report (charts to PNG/SVG, the HTML) is timed after it.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

CHILD = "--child"
WEEK = "2026-W43"


def prepare(folder: Path, users: int, weeks: int) -> Path:
    """A warehouse holding a simulated world (made once per size)."""
    from upshot.config import Config
    from upshot.load import load
    from upshot.simulate import simulate

    db = folder / f"report_{users}_{weeks}.duckdb"
    if db.exists():
        return db
    data = folder / f"world_{users}_{weeks}"
    simulate(data, users=users, weeks=weeks, seed=5)
    config = Config()
    for table, path in (
        ("users", data / "users.parquet"),
        ("sends", data / "sends"),
        ("outcomes", data / "outcomes"),
        ("assignments", data / "assignments.parquet"),
    ):
        load(str(db), table, [str(path)], config=config)
    return db


def upshot_side(db: str) -> dict[str, int]:
    from upshot.config import Config
    from upshot.reports.data import report_data
    from upshot.store import reading

    config = Config()
    with reading(config, db) as con:
        data = report_data(con, config, WEEK, weights_dir="/nonexistent")
    push = next(r for r in data.reach if r["channel"] == "push" and r["week"] == WEEK)
    return {
        "sends": sum(d["sends"] or 0 for d in data.daily),
        "outcomes": sum(d["outcomes"] or 0 for d in data.daily),
        "push_reachable": push["reachable"],
    }


def baseline_side(db: str) -> dict[str, int]:
    import warnings

    import duckdb

    warnings.simplefilter("ignore")  # pandas deprecation notes from DuckDB's .df()
    from upshot import period

    start, end = period.bounds(WEEK)
    con = duckdb.connect(db, read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    # what a notebook does: fetch the rows, then aggregate them in pandas
    sends = con.execute(
        "SELECT * FROM sends WHERE decided_at >= ? AND decided_at < ?", [start, end]
    ).df()
    outcomes = con.execute("SELECT * FROM outcomes").df()
    users = con.execute("SELECT * FROM users").df()
    con.close()
    sends["day"] = sends["decided_at"].dt.floor("D")
    sends.groupby(["message_class"]).agg(users=("user_id", "nunique"), sends=("treated", "sum"))
    daily_sends = sends.groupby("day").size()
    week_outcomes = outcomes[(outcomes["occurred_at"] >= start) & (outcomes["occurred_at"] < end)]
    daily_outcomes = week_outcomes.groupby(week_outcomes["occurred_at"].dt.floor("D")).size()
    outs = outcomes[(outcomes["event"] == "push_opt_out") & (outcomes["occurred_at"] < end)]
    gone = set(outs["user_id"])
    opted = users[users["push_opt_in"].astype(bool)]
    return {
        "sends": int(daily_sends.sum()),
        "outcomes": int(daily_outcomes.sum()),
        "push_reachable": int((~opted["user_id"].isin(gone)).sum()),
    }


def child(side: str, db: str) -> None:
    started = time.perf_counter()
    counts = upshot_side(db) if side == "upshot" else baseline_side(db)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "counts": counts}))


def run_child(side: str, db: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, CHILD, side, str(db)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def full_report(db: Path, folder: Path) -> float:
    from upshot.config import Config
    from upshot.reports.weekly import build
    from upshot.store import reading

    config = Config()
    started = time.perf_counter()
    with reading(config, str(db)) as con:
        build(con, config, WEEK, directory=folder / "reports", weights_dir=folder / "weights")
    return time.perf_counter() - started


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == CHILD:
        child(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--weeks", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=Path("bench_out"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    db = prepare(args.dir, args.users, args.weeks)
    # the best of two runs per side: the first after loading also pays for DuckDB's
    # checkpoint of the write-ahead log
    ours = min((run_child("upshot", db) for _ in range(2)), key=lambda r: r["seconds"])
    base = min((run_child("baseline", db) for _ in range(2)), key=lambda r: r["seconds"])
    if ours["counts"] != base["counts"]:
        raise SystemExit(f"the two sides disagree: {ours['counts']} vs {base['counts']}")
    print(f"world: {args.users:,} users, {args.weeks} weeks; {WEEK}; counts {ours['counts']}")
    for label, r in (("report data (upshot, SQL)", ours), ("baseline (pandas on rows)", base)):
        print(f"{label}: {r['seconds']:.2f} s, peak RSS {r['peak_mb']:.0f} MB")
    speed = base["seconds"] / ours["seconds"]
    memory = base["peak_mb"] / ours["peak_mb"]
    print(f"upshot is {speed:.1f}x faster and uses {memory:.1f}x less peak memory")
    print(f"full report (data, charts as PNG+SVG, HTML): {full_report(db, args.dir):.1f} s")


if __name__ == "__main__":
    main()
