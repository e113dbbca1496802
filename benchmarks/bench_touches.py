"""Journeys aggregated in SQL against a pure-Python loop over journeys, same run.

    python benchmarks/bench_touches.py [--journeys 10000000] [--sample 0.02] [--dir bench_out]
        [--full-baseline]

A synthetic warehouse holds one journey per user: 1-4 treated sends over 4 days on five
channels, and for one user in ten a conversion within 3 days of the last send, so every
touch falls inside the 7-day lookback and the journeys number exactly `--journeys`.

- upshot: `warehouse_journeys` (ASOF join, journeys, path table, time-decay credits and
  untouched conversions, all in DuckDB) plus every method on the resulting path table.
- baseline: the same definition in plain Python (a touch belongs to the first later
  conversion within the lookback; journeys grouped per user; paths counted in a dict),
  fed by one sorted fetch of sends and conversions. On `--journeys` 10M that would take
  minutes and GBs of Python objects, so it runs on a hash sample of the users
  (`--sample`, 2% by default, copied to a file of its own so its fetch costs what it
  would on that much data), and its time is extrapolated linearly to all journeys. Its
  memory is extrapolated from two nested samples (`--sample` and half of it): the slope
  between their peaks per journey, so that the fixed part (the interpreter, DuckDB's
  buffers) is not multiplied by the scale. On 300,000 journeys the run on all of them
  peaked at 330 MB; one 10% sample scaled linearly said 680 MB, the slope between the
  5% and 10% samples 370 MB (`--journeys 300000 --sample 0.1 --full-baseline` also runs
  the baseline on all journeys, to check the extrapolation where that is affordable).

Each variant runs in its own process and reports its own peak RSS (VmHWM: `ru_maxrss`
would include this parent's peak from building the warehouse, see `_peak.py`).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from _peak import inherited_mb, peak_mb  # benchmarks/ is on sys.path: the script's folder

CHILD = "--child"
CHANNELS = "['push', 'email', 'in_app', 'whatsapp', 'sms']"


def build(db: Path, journeys: int) -> float:
    from upshot import store

    started = time.perf_counter()
    con = store.connect(str(db), read_only=False)
    con.execute("SELECT setseed(0.42)")
    con.execute(
        f"""
        INSERT INTO sends (send_id, user_id, message_class, channel, decided_at, treated)
        WITH users AS (
            SELECT range AS u, 1 + (hash(range) % 4)::INT AS touches FROM range({journeys})
        ),
        touches AS (SELECT u, unnest(range(touches)) AS k FROM users)
        SELECT
            's' || u || '-' || k, 'u' || u,
            channel || '_' || (hash(u, k) % 2)::VARCHAR, channel,
            TIMESTAMPTZ '2026-11-16 00:00:00+00' + to_seconds(random() * 4 * 86400), true
        FROM (SELECT u, k, {CHANNELS}[1 + (hash(k, u) % 5)::INT] AS channel FROM touches)
        """
    )
    con.execute(
        """
        INSERT INTO outcomes (user_id, occurred_at, event, value, event_id)
        SELECT user_id, max(decided_at) + to_seconds(random() * 3 * 86400),
               'subscription_start', 1.0 + (hash(user_id) % 50), 'c' || user_id
        FROM sends WHERE hash(user_id) % 10 = 0 GROUP BY user_id
        """
    )
    con.execute("CHECKPOINT")
    con.close()
    return time.perf_counter() - started


def build_sample(db: Path, sample_db: Path, sample: float) -> None:
    """The sampled users' sends and conversions in their own file, so that the baseline's
    fetch costs what it would on that much data (not a scan of everything)."""
    import duckdb

    modulus = round(1 / sample)
    con = duckdb.connect(str(sample_db))
    con.execute(f"ATTACH '{db}' AS full_db (READ_ONLY)")
    for table in ("sends", "outcomes"):
        con.execute(
            f"CREATE TABLE {table} AS SELECT * FROM full_db.{table} "
            f"WHERE hash(user_id || 'sample') % {modulus} = 0"
        )
    con.close()


def run_upshot(db: str) -> dict[str, float]:
    from upshot import store
    from upshot.attribution.touches.attribute import attribute, warehouse_journeys
    from upshot.config import Config

    with store.reading(Config(), db) as con:
        started = time.perf_counter()
        journeys = warehouse_journeys(con, ["subscription_start"], lookback_days=7.0)
        sql = time.perf_counter() - started
        attribute(journeys.paths, time_decay=journeys.time_decay)
        total = time.perf_counter() - started
    table = journeys.paths
    return {
        "seconds": total,
        "sql_seconds": sql,
        "journeys": table.total_conversions + table.total_nulls,
        "conversions": table.total_conversions,
        "paths": len(table.paths),
    }


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_python(db: str) -> dict[str, float]:
    import duckdb

    start_mb = _rss_mb()
    started = time.perf_counter()
    con = duckdb.connect(db, read_only=True)
    touches = con.execute(
        "SELECT user_id, epoch(decided_at), channel FROM sends WHERE treated "
        "ORDER BY user_id, decided_at, channel"
    ).fetchall()
    conversions = con.execute(
        "SELECT user_id, epoch(occurred_at), value FROM outcomes "
        "WHERE event = 'subscription_start' ORDER BY user_id, occurred_at"
    ).fetchall()
    con.close()
    fetched = time.perf_counter()
    by_user: dict[str, list[tuple[float, float]]] = {}
    for user, at, value in conversions:
        by_user.setdefault(user, []).append((at, value))
    lookback = 7 * 86400.0
    paths: Counter[tuple[tuple[str, ...], bool]] = Counter()
    values: defaultdict[tuple[str, ...], float] = defaultdict(float)
    journey: list[str] = []
    key: tuple[str, int, bool] | None = None
    value = 0.0
    for user, at, channel in touches:
        events = by_user.get(user, [])
        nxt = next((i for i, (ct, _) in enumerate(events) if ct > at), None)
        claimed = nxt is not None and events[nxt][0] <= at + lookback
        current = (user, -1 if nxt is None else nxt, claimed)
        if current != key:
            if key is not None:
                paths[(tuple(journey), key[2])] += 1
                values[tuple(journey)] += value if key[2] else 0.0
            journey, key = [], current
            value = events[nxt][1] if claimed and nxt is not None else 0.0
        journey.append(channel)
    if key is not None:
        paths[(tuple(journey), key[2])] += 1
        values[tuple(journey)] += value if key[2] else 0.0
    done = time.perf_counter()
    return {
        "seconds": done - started,
        "loop_seconds": done - fetched,
        "start_mb": start_mb,
        "journeys": float(sum(paths.values())),
        "conversions": float(sum(n for (_, converted), n in paths.items() if converted)),
    }


def child(variant: str, db: str) -> None:
    result = run_upshot(db) if variant == "upshot" else run_python(db)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["peak_mb"] = peak_mb()
    result["ru_maxrss_mb"] = inherited_mb()
    # CPU seconds as well as wall time: on a shared machine the wall clock also measures
    # everyone else's load, the CPU time mostly our own work
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    print(json.dumps(result))


def spawn(variant: str, db: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, CHILD, variant, str(db)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=10_000_000)
    parser.add_argument("--sample", type=float, default=0.02)
    parser.add_argument("--dir", default="bench_out")
    parser.add_argument(
        "--full-baseline",
        action="store_true",
        help="also run the Python baseline on all journeys, to check the extrapolation",
    )
    args = parser.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / f"touches_{args.journeys}.duckdb"
    if not db.exists():
        print(f"building {args.journeys:,} journeys ...", file=sys.stderr)
        print(f"built in {build(db, args.journeys):.1f}s", file=sys.stderr)
    samples = {}
    for share in (args.sample, args.sample / 2):  # nested: the half's users are in the whole
        samples[share] = folder / f"touches_{args.journeys}_sample_{share:g}.duckdb"
        if not samples[share].exists():
            build_sample(db, samples[share], share)
    sample_db = samples[args.sample]
    print(
        f"this process (built the warehouse when it was missing): peak RSS {peak_mb():.0f} MB; "
        "each variant below reports its own (VmHWM of a fresh process)"
    )
    ours = spawn("upshot", db)
    base = spawn("python", sample_db)
    half = spawn("python", samples[args.sample / 2])
    scale = ours["journeys"] / base["journeys"]
    extrapolated = base["seconds"] * scale
    print(
        f"journeys: {ours['journeys']:,.0f} ({ours['conversions']:,.0f} converting), "
        f"{ours['paths']:,.0f} distinct paths"
    )
    print(
        f"upshot (SQL journeys + all methods): {ours['seconds']:.1f}s wall "
        f"(SQL {ours['sql_seconds']:.1f}s), {ours['cpu_seconds']:.1f}s CPU, "
        f"peak RSS {ours['peak_mb']:.0f} MB"
    )
    print(
        f"pure Python on {base['journeys']:,.0f} journeys ({args.sample:.0%} sample): "
        f"{base['seconds']:.2f}s wall (loop {base['loop_seconds']:.2f}s), "
        f"{base['cpu_seconds']:.2f}s CPU, peak RSS {base['peak_mb']:.0f} MB"
    )
    per_journey = (base["peak_mb"] - half["peak_mb"]) / (base["journeys"] - half["journeys"])
    grown = base["peak_mb"] + per_journey * (ours["journeys"] - base["journeys"])
    print(
        f"pure Python on {half['journeys']:,.0f} journeys ({args.sample / 2:.0%} sample): "
        f"peak RSS {half['peak_mb']:.0f} MB, so {per_journey * 1024:.2f} KB per journey "
        f"beyond a fixed {base['peak_mb'] - per_journey * base['journeys']:.0f} MB"
    )
    print(
        f"pure Python extrapolated to all journeys (x{scale:.1f}, linear; memory "
        "by the slope): "
        f"{extrapolated:.1f}s wall, {base['cpu_seconds'] * scale:.1f}s CPU, "
        f"peak RSS ~{grown / 1024:.1f} GB (its rows and journeys are all Python objects)"
    )
    print(
        f"ratio (Python / upshot): wall {extrapolated / ours['seconds']:.1f}x, "
        f"CPU {base['cpu_seconds'] * scale / ours['cpu_seconds']:.1f}x; the Python loop "
        f"alone, rows already fetched: {base['loop_seconds'] * scale / ours['seconds']:.1f}x"
    )
    print(
        f"(ru_maxrss of the children, which includes this parent's peak: upshot "
        f"{ours['ru_maxrss_mb']:.0f} MB, Python {base['ru_maxrss_mb']:.0f} MB; not a result; "
        f"the old linear extrapolation from it: "
        f"~{((base['ru_maxrss_mb'] - base['start_mb']) * scale + base['start_mb']) / 1024:.1f} GB)"
    )
    if args.full_baseline:
        full = spawn("python", db)
        print(
            f"pure Python on all {full['journeys']:,.0f} journeys, measured: "
            f"{full['seconds']:.1f}s wall, {full['cpu_seconds']:.1f}s CPU, peak RSS "
            f"{full['peak_mb'] / 1024:.2f} GB (extrapolated above: {extrapolated:.1f}s, "
            f"{grown / 1024:.2f} GB)"
        )
    rate = ours["conversions"] / ours["journeys"], base["conversions"] / base["journeys"]
    print(f"check: conversion rate {rate[0]:.4f} (upshot) vs {rate[1]:.4f} (sample)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == CHILD:
        child(sys.argv[2], sys.argv[3])
    else:
        main()
