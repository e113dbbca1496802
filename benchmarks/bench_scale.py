"""Uplift wall time against decisions, local backend vs Ray backend, and the SQL stage.

    .venv/bin/python benchmarks/bench_scale.py                      # 1M, 3M, 10M, 30M
    .venv/bin/python benchmarks/bench_scale.py --sizes 1e6,3e6 --repeats 2
    .venv/bin/python benchmarks/bench_scale.py --stages sql --sizes 1e6,1e7,3e7
    .venv/bin/python benchmarks/bench_scale.py --stages frame --sizes 1e7 --nuisance linear
    .venv/bin/python benchmarks/bench_scale.py --engine duckdb,spark --sizes 1e7,3e7 --repeats 3

Stage `fit`: `estimate_uplift` on a simulated per-decision frame of N decisions spread
over `--classes` message classes (4 objectives, 5 covariates, segments), once with the
local backend (`--jobs 2`: a pool of two processes) and once with the Ray backend on a
private local Ray of 2 CPUs (one CPU per fit, so both run two fits at a time with one
thread each: the same work, and the same results). Ray's start-up (`ray.init`) is timed
apart: on a standing cluster it is paid once, not per run. The ratio ray / local is the
Ray backend's overhead on this machine, where Ray cannot add cores.

Stage `sql`: `decision_frame` (the one-pass SQL join of decisions to outcomes and users)
on a DuckDB warehouse of N decisions generated in SQL, with the default memory limit.

Stage `frame`: from that warehouse to estimates, the way `upshot uplift` reads it
(`file`: the frame written to Parquet by DuckDB, fits reading one class at a time)
against handing the whole frame to Python (`memory`). `fit_peak_mb` is the driver's
peak RSS while the models fit, sampled every 50 ms: what the frame costs the driver.

Stage `lake` (chosen by `--engine duckdb,spark`, or one of them): the generated warehouse
exported to a Parquet lake (sends and outcomes partitioned by day), then the decision
frame built from the lake's files in place and written to Parquet, the way `upshot uplift`
builds it, by each engine in turn (interleaved A, B, A, B): DuckDB over views of the
files, Spark (`[engine] spark_master`, default local[2], driver memory 1g) reading them
itself. The Spark session's start is timed apart (`startup_s`; paid once per process).
`peak_mb` is the Python driver's peak RSS, `child_mb` the Spark JVM's (local mode: the
driver and its executors), so the driver's memory is their sum.

Each measurement runs in its own process so that peak memory is its own: `peak_mb` is
the driver's peak RSS and `child_mb` the largest worker's (Ray's or the pool's).
Timings on a shared machine are noisy: use `--repeats` and read the minimum.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

OBJECTIVES = ("conversion", "engagement", "retention", "reachability")


def simulated_frame(size: int, classes: int, seed: int = 0) -> Any:
    """`size` decisions over `classes` classes: confounded targeting, known-propensity holdouts."""
    import polars as pl

    rng = np.random.default_rng(seed)
    per = size // classes
    parts = []
    for k in range(classes):
        activity = rng.normal(size=per)
        tenure = rng.exponential(1.5, size=per)
        premium = rng.random(per) < 0.3
        randomized = rng.random(per) < 0.3
        p = np.where(randomized, 0.8, np.clip(1 / (1 + np.exp(0.2 - 1.2 * activity)), 0.05, 0.95))
        T = rng.random(per) < p
        lift = 0.1 * (k % 3)
        base = -2.5 + 0.7 * activity
        conv = rng.random(per) < 1 / (1 + np.exp(-(base + lift * T)))
        parts.append(
            pl.DataFrame(
                {
                    "message_class": f"class_{k:02d}",
                    "channel": ("push", "email", "in_app")[k % 3],
                    "treated": T,
                    "propensity": p,
                    "randomized": randomized,
                    "activity": activity,
                    "tenure_years": tenure,
                    "product_tier": np.where(premium, "premium", "free"),
                    "country": rng.choice(np.array(["US", "GB", "DE", "BR"]), size=per),
                    "platform": rng.choice(np.array(["ios", "android", "web"]), size=per),
                    "conversion": conv.astype(np.float64),
                    "engagement": 40 + 25 * activity + T * 6 * (1 + lift) + rng.normal(0, 25, per),
                    "retention": rng.binomial(7, 0.4 + 0.05 * T).astype(np.float64),
                    "reachability": (rng.random(per) < 0.03 + 0.01 * T).astype(np.float64),
                }
            )
        )
    return pl.concat(parts)


def run_fit(size: int, backend: str, classes: int, nuisance: str) -> dict[str, Any]:
    from upshot.attribution.uplift.estimate import estimate_uplift
    from upshot.attribution.uplift.ray_backend import ray_session
    from upshot.config import Uplift

    frame = simulated_frame(size, classes)
    settings = Uplift(
        nuisance=nuisance, segments=("country", "product_tier"), jobs=2, backend=backend
    )
    out: dict[str, Any] = {"startup_s": 0.0}

    def fit() -> None:
        started = time.perf_counter()
        results = estimate_uplift(frame, outcomes=list(OBJECTIVES), settings=settings, refute=False)
        out["seconds"] = time.perf_counter() - started
        out["ok"] = sum(e.status == "ok" for e in results.estimates if e.segment == "all")

    if backend == "local":
        fit()
        return out
    # started here, so that its start-up is timed apart; `map_fits_ray` uses this session
    started = time.perf_counter()
    with ray_session(num_cpus=2):
        out["startup_s"] = time.perf_counter() - started
        fit()
    return out


WAREHOUSE_SQL = """
CREATE TABLE users AS SELECT 'u' || i AS user_id, NULL::VARCHAR AS load_id,
    random() * 2 - 1 AS activity, (i % 7)::DOUBLE AS tenure_years,
    CASE WHEN i % 3 = 0 THEN 'premium' ELSE 'free' END AS product_tier,
    ['US', 'GB', 'DE', 'BR'][1 + i % 4] AS country
FROM range($users) t(i);
CREATE TABLE sends AS SELECT 's' || i AS send_id, 'u' || (i % $users) AS user_id,
    'class_' || (i % 8) AS message_class, ['push', 'email', 'in_app'][1 + i % 3] AS channel,
    TIMESTAMPTZ '2026-11-02 00:00:00+00' + to_seconds((hash(i) % 604800)::DOUBLE) AS decided_at,
    random() < 0.7 AS treated, 0.7 AS propensity, true AS randomized,
    NULL AS campaign_id, NULL AS experiment_id, NULL AS variant, NULL AS load_id
FROM range($size) t(i);
CREATE TABLE outcomes AS SELECT 'u' || (hash(i) % $users) AS user_id,
    TIMESTAMPTZ '2026-11-02 00:00:00+00' + to_seconds((hash(i + 1) % 1209600)::DOUBLE)
        AS occurred_at,
    ['subscription_start', 'stream_minutes', 'active_day', 'push_opt_out'][1 + i % 4] AS event,
    1.0 + i % 50 AS value, NULL AS event_id, NULL AS send_id, NULL AS load_id
FROM range($size) t(i);
"""


def run_sql(size: int) -> dict[str, Any]:
    """`decision_frame` on a generated warehouse of `size` decisions (4 per user)."""
    from upshot.attribution.uplift.frames import decision_frame

    with tempfile.TemporaryDirectory(prefix="upshot-bench-") as tmp:
        con, config, build = build_warehouse(tmp, size)
        started = time.perf_counter()
        frame = decision_frame(con, config)
        seconds = time.perf_counter() - started
        con.close()
    return {"seconds": seconds, "build_s": build, "rows": frame.height}


def build_warehouse(tmp: str, size: int) -> tuple[Any, Any, float]:
    """A connection to a generated warehouse of `size` decisions (4 per user) under `tmp`,
    its config, and the seconds the generation took."""
    from upshot.config import Config
    from upshot.store import connect

    config = Config()
    con = connect(str(Path(tmp) / "w.duckdb"), read_only=False, settings=config.warehouse)
    con.execute(f"SET temp_directory = '{tmp}/spill'")
    con.execute("DROP TABLE users; DROP TABLE sends; DROP TABLE outcomes")
    started = time.perf_counter()
    params = {"size": size, "users": max(1, size // 4)}
    for statement in WAREHOUSE_SQL.split(";"):
        if statement.strip():
            con.execute(statement, {k: v for k, v in params.items() if f"${k}" in statement})
    return con, config, time.perf_counter() - started


def run_frame(size: int, variant: str, nuisance: str) -> dict[str, Any]:
    """Warehouse to estimates, the frame handed over whole (`memory`) or written to Parquet
    and read a class at a time (`file`); the driver's peak RSS while it fits, sampled."""
    import threading

    import polars as pl

    from upshot.attribution.uplift.budget import resident_bytes
    from upshot.attribution.uplift.estimate import estimate_frame
    from upshot.attribution.uplift.frames import (
        covariate_columns,
        decision_frame,
        write_decision_frame,
    )
    from upshot.config import Uplift

    settings = Uplift(nuisance=nuisance, segments=("country", "product_tier"), jobs=2)
    with tempfile.TemporaryDirectory(prefix="upshot-bench-") as tmp:
        con, config, build = build_warehouse(tmp, size)
        started = time.perf_counter()
        path = Path(tmp) / "frame.parquet"
        frame: Any
        if variant == "memory":
            frame = decision_frame(con, config)
        else:
            write_decision_frame(con, config, path)
            frame = pl.scan_parquet(path)
        covariates = covariate_columns(con)
        con.close()
        sql_s = time.perf_counter() - started
        peak = [resident_bytes()]
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.05):
                peak[0] = max(peak[0], resident_bytes())

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        started = time.perf_counter()
        results = estimate_frame(
            frame, config, covariates=covariates, settings=settings, refute=False
        )
        fit_s = time.perf_counter() - started
        stop.set()
        watcher.join()
    ok = sum(e.status == "ok" for e in results.estimates if e.segment == "all")
    return {"seconds": sql_s + fit_s, "build_s": build, "sql_s": sql_s, "fit_s": fit_s,
            "fit_peak_mb": peak[0] / 2**20, "ok": ok}  # fmt: skip


def export_lake(tmp: str, size: int) -> tuple[str, float]:
    """The generated warehouse of `size` decisions as a Parquet lake under `tmp`/lake."""
    con, _, _ = build_warehouse(tmp, size)
    started = time.perf_counter()
    lake = Path(tmp) / "lake"
    lake.mkdir()
    for table, column in (("sends", "decided_at"), ("outcomes", "occurred_at"), ("users", "")):
        target = lake / table
        if column:
            con.execute(
                f"COPY (SELECT *, CAST({column} AS DATE) AS day FROM {table}) TO '{target}' "
                "(FORMAT parquet, PARTITION_BY (day))"
            )
        else:
            target.mkdir(parents=True)
            con.execute(f"COPY {table} TO '{target / 'part-0.parquet'}' (FORMAT parquet)")
    con.close()
    return str(lake), time.perf_counter() - started


def run_lake(engine: str, lake: str) -> dict[str, Any]:
    """`write_decision_frame` from the lake's files on `engine`; seconds and rows."""
    import duckdb
    from _peak import spark_jvm_peak_mb

    from upshot.attribution.uplift.frames import write_decision_frame
    from upshot.config import Config

    config = Config()
    tables = {t: str(Path(lake) / t) for t in ("sends", "outcomes", "users")}
    out: dict[str, Any] = {"startup_s": 0.0}
    with tempfile.TemporaryDirectory(prefix="upshot-bench-frame-") as tmp:
        path = str(Path(tmp) / "frame.parquet")
        con: Any
        if engine == "spark":
            from upshot.engines import open_spark

            started = time.perf_counter()
            con = open_spark(config, tables)
            con.fetch("SELECT 1 AS one", {}, "warm-up")  # the session starts here
            out["startup_s"] = time.perf_counter() - started
        else:
            con = duckdb.connect()
            con.execute("SET TimeZone = 'UTC'")
            con.execute(f"SET memory_limit = '{config.warehouse.memory_limit}'")
            con.execute(f"SET temp_directory = '{tmp}/spill'")
            for table, folder in tables.items():
                con.execute(
                    f"CREATE VIEW {table} AS SELECT * FROM "
                    f"read_parquet('{folder}/**/*.parquet', hive_partitioning = true)"
                )
        started = time.perf_counter()
        out["rows"] = write_decision_frame(con, config, path)
        out["seconds"] = time.perf_counter() - started
    out["jvm_mb"] = spark_jvm_peak_mb()
    return out


def one(stage: str, backend: str, size: int, classes: int, nuisance: str, lake: str = "") -> None:
    if stage == "lake":
        from _peak import peak_mb

        out = run_lake(backend, lake)
        out["peak_mb"] = peak_mb()
        out["child_mb"] = out.pop("jvm_mb")
        print(json.dumps(out))
        return
    if stage == "frame":
        out = run_frame(size, backend, nuisance)
    else:
        out = run_sql(size) if stage == "sql" else run_fit(size, backend, classes, nuisance)
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["child_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(out))


def measure(stage: str, backend: str, size: int, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--one", stage, backend, str(size)]
    cmd += ["--classes", str(args.classes), "--nuisance", args.nuisance]
    if stage == "lake":
        cmd += ["--lake-dir", args.lake_dir]
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        return {"error": (run.stderr.strip().splitlines() or ["?"])[-1]}
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,3e6,1e7,3e7", help="decisions, comma-separated")
    parser.add_argument("--stages", default="fit,sql")
    parser.add_argument("--backends", default="local,ray")
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--nuisance", default="lightgbm", choices=("lightgbm", "linear"))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--engine",
        default="",
        help="duckdb,spark: time the lake stage on these engines (interleaved)",
    )
    parser.add_argument("--lake-dir", default="", help=argparse.SUPPRESS)
    parser.add_argument(
        "--one", nargs=3, metavar=("STAGE", "BACKEND", "SIZE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.one:
        one(args.one[0], args.one[1], int(args.one[2]), args.classes, args.nuisance, args.lake_dir)
        return
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    if args.engine:
        lake_stage(sizes, args)
        return
    stages = args.stages.split(",")
    print("stage  backend   decisions   best_s  runs_s  startup_s  s_per_1M  peak_mb  child_mb")
    for stage in stages:
        backends = {"fit": args.backends.split(","), "frame": ["memory", "file"]}.get(
            stage, ["duckdb"]
        )
        for size in sizes:
            best: dict[str, float] = {}
            for backend in backends:
                runs = [measure(stage, backend, size, args) for _ in range(args.repeats)]
                good = [r for r in runs if "seconds" in r]
                if not good:
                    print(f"{stage:5}  {backend:7}  {size:>10,}  failed: {runs[0].get('error')}")
                    continue
                top = min(good, key=lambda r: r["seconds"])
                best[backend] = top["seconds"]
                runs_s = [round(r["seconds"], 1) for r in good]
                startup = f"{top['startup_s']:.1f}" if "startup_s" in top else "-"
                if "fit_peak_mb" in top:
                    startup = f"sql {top['sql_s']:.1f} s, fit {top['fit_s']:.1f} s, "
                    startup += f"driver peak while fitting {top['fit_peak_mb']:.0f} MB;"
                print(
                    f"{stage:5}  {backend:7}  {size:>10,}  {top['seconds']:8.1f}  {runs_s}"
                    f"  {startup:>6}  {top['seconds'] / size * 1e6:8.1f}"
                    f"  {top['peak_mb']:7.0f}  {top['child_mb']:7.0f}",
                    flush=True,
                )
            if "local" in best and "ray" in best:
                print(
                    f"       ray / local at {size:,}: {best['ray'] / best['local']:.2f}x",
                    flush=True,
                )


def lake_stage(sizes: list[int], args: argparse.Namespace) -> None:
    """Each engine builds the frame from the same lake, interleaved; min, median, ratio."""
    import os
    import statistics

    engines = args.engine.split(",")
    load = os.getloadavg()
    print(f"lake stage, engines {engines}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("engine  decisions     min_s  median_s  runs_s  startup_s  python_peak_mb  jvm_peak_mb")
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="upshot-bench-lake-") as tmp:
            args.lake_dir, export_s = export_lake(tmp, size)
            print(f"  {size:,} decisions: lake written in {export_s:.1f} s", flush=True)
            runs: dict[str, list[dict[str, Any]]] = {e: [] for e in engines}
            for _ in range(max(args.repeats, 1)):
                for engine in engines:  # interleaved: A, B, A, B
                    runs[engine].append(measure("lake", engine, size, args))
        best: dict[str, float] = {}
        for engine, found in runs.items():
            good = [r for r in found if "seconds" in r]
            if not good:
                print(f"{engine:6}  {size:>10,}  failed: {found[0].get('error')}")
                continue
            times = [r["seconds"] for r in good]
            best[engine] = min(times)
            print(
                f"{engine:6}  {size:>10,}  {min(times):8.1f}  {statistics.median(times):8.1f}"
                f"  {[round(t, 1) for t in times]}  {max(r['startup_s'] for r in good):6.1f}"
                f"  {max(r['peak_mb'] for r in good):10.0f}"
                f"  {max(r['child_mb'] for r in good):10.0f}",
                flush=True,
            )
        if "duckdb" in best and "spark" in best:
            print(f"       spark / duckdb at {size:,}: {best['spark'] / best['duckdb']:.2f}x")


if __name__ == "__main__":
    main()
