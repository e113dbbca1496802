"""The daily load of a deep hive tree: `upshot load` against DuckDB's own hive pruning.

    python benchmarks/bench_partitions.py [--days 180] [--rows-per-file 5000] [--dir bench_out]

A tree `sends/date=D/channel=C/data_0.parquet` (channel in the folder only, as hive
writers leave it) holds `--days` days of history, already loaded; one new day arrives.
Timed, each in its own process from a copy of the loaded warehouse:

- `upshot tree`: `upshot load sends tree/`, which lists every file and skips the seen
  ones by path, size and modification time;
- `upshot --since`: the same with `--since NEW_DAY`, pruned by folder name;
- `bare hive`: DuckDB reading the tree with `hive_partitioning = true` and a filter on
  the date, which DuckDB pushes down to the folder names; no validation, no dedupe.

Each time includes its own imports (about 0.05 s for upshot's, which DuckDB alone does
not pay), as a scheduled `upshot load` would. `files` is how many files each one looked
at (listed, for the whole tree). The ratio upshot / bare says what the seen-partition
bookkeeping and the validation of the new day cost on top of reading it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

CHILD = "--child"
CHANNELS = ("push", "email", "in_app", "whatsapp")


def write_days(tree: Path, first: date, days: int, rows_per_file: int, offset: int) -> None:
    """`days` days from `first`, 4 channels each, `rows_per_file` rows per file."""
    import duckdb

    per_day = rows_per_file * len(CHANNELS)
    select = (
        f"SELECT 's' || (i + {offset}) AS send_id, 'u' || (hash(i) % 5000000) AS user_id, "
        "'class_' || (i % 8) AS message_class, "
        "CASE i % 4 WHEN 0 THEN 'push' WHEN 1 THEN 'email' WHEN 2 THEN 'in_app' "
        "ELSE 'whatsapp' END AS channel, "
        f"TIMESTAMPTZ '{first} 00:00:00+00' + to_days(CAST(i // {per_day} AS INTEGER)) "
        "+ to_seconds(i % 86400) AS decided_at, "
        "hash(i) % 10 < 7 AS treated, 0.05 + (hash(i) % 90) / 100.0 AS propensity, "
        "hash(i) % 10 < 3 AS randomized, CAST(decided_at AS DATE) AS date "
        f"FROM range({days * per_day}) t(i)"
    )
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            f"COPY ({select}) TO '{tree}' (FORMAT parquet, PARTITION_BY (date, channel), APPEND)"
        )


def child(variant: str, tree: str, db: str, new_day: str) -> None:
    started = time.perf_counter()
    if variant.startswith("upshot"):
        from upshot.config import Config
        from upshot.load import load
        from upshot.partitions import Pruning

        since = date.fromisoformat(new_day) if variant == "upshot_since" else None
        report = load(db, "sends", [tree], config=Config(), pruning=Pruning.parse([], since))
        rows = sum(f.rows_accepted for f in report.files)
        files = len(report.files)
    else:
        import duckdb

        con = duckdb.connect(db)
        source = f"read_parquet('{tree}/*/*/*.parquet', hive_partitioning = true)"
        con.execute(
            f"CREATE TABLE new_sends AS SELECT * FROM {source} WHERE date = DATE '{new_day}'"
        )
        rows = con.execute("SELECT count(*) FROM new_sends").fetchone()[0]  # type: ignore[index]
        files = len(list(Path(tree).glob(f"date={new_day}/*/*.parquet")))
        con.close()
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "rows": rows, "files": files}))


def run(variant: str, tree: Path, history: Path, folder: Path, new_day: str) -> dict[str, float]:
    db = folder / f"partitions_{variant}.duckdb"
    for stale in folder.glob(f"{db.name}*"):
        stale.unlink()
    if variant.startswith("upshot"):
        shutil.copyfile(history, db)
    out = subprocess.run(
        [sys.executable, __file__, CHILD, variant, str(tree), str(db), new_day],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == CHILD:
        child(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--rows-per-file", type=int, default=5_000)
    parser.add_argument("--dir", type=Path, default=Path("bench_out"))
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs per variant")
    args = parser.parse_args()
    from upshot.config import Config
    from upshot.load import load

    folder = args.dir / f"partitions_{args.days}x{args.rows_per_file}"
    shutil.rmtree(folder, ignore_errors=True)
    tree, history = folder / "sends", folder / "history.duckdb"
    tree.mkdir(parents=True)
    first = date(2026, 1, 1)
    write_days(tree, first, args.days, args.rows_per_file, 0)
    began = time.perf_counter()
    loaded = load(str(history), "sends", [str(tree)], config=Config())
    history_seconds = time.perf_counter() - began
    new_day = first + timedelta(days=args.days)
    write_days(tree, new_day, 1, args.rows_per_file, args.days * args.rows_per_file * 4)
    print(
        f"history: {len(loaded.files):,} files, "
        f"{sum(f.rows_accepted for f in loaded.files):,} rows, loaded in {history_seconds:.1f} s; "
        f"new day {new_day}: {len(CHANNELS)} files of {args.rows_per_file:,} rows"
    )
    print(f"{'variant':14} {'seconds':>8} {'files':>10} {'rows added':>10}")
    results = {}
    for variant in ("bare_hive", "upshot_tree", "upshot_since"):
        runs = [run(variant, tree, history, folder, str(new_day)) for _ in range(args.repeat)]
        best = min(runs, key=lambda r: r["seconds"])
        results[variant] = best
        print(f"{variant:14} {best['seconds']:8.2f} {best['files']:10,} {best['rows']:10,}")
    for variant in ("upshot_tree", "upshot_since"):
        ratio = results[variant]["seconds"] / results["bare_hive"]["seconds"]
        print(f"ratio {variant}/bare_hive = {ratio:.2f}x")


if __name__ == "__main__":
    main()
