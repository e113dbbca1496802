"""Benchmark: the experiments engine against a bare SUM pass and pandas + statsmodels.

    .venv/bin/python benchmarks/bench_experiments.py --users 10000000
    .venv/bin/python benchmarks/bench_experiments.py --users 10000000 --engine spark

Writes a user-level Parquet file (2 arms, 20 metrics: 12 plain (6 of them 0/1), 4 CUPED
metrics with a pre-period covariate each, 4 ratio metrics), then times, each in its own
process so that peak memory (max RSS) is its own:

- upshot: `upshot.experiments.analyze(table=...)`, the SQL sufficient statistics in one
  pass plus every test, CI and correction in Python;
- bare SUM: one DuckDB pass `SELECT variant, count(*), sum(col)... GROUP BY variant` over
  the same columns, the least any engine must do to read them;
- hand-written SQL: the same pass computing the same sums, squares and cross-products as
  upshot's generated query (what upshot adds on top of the arithmetic itself);
- spark (with `--engine spark`): the same `analyze` with the passes on Spark
  (`[engine]` defaults: local[2], driver memory 1g), the session started before the clock
  (`startup_seconds`); its peak memory is the Python driver's plus the Spark JVM's
  (`jvm_peak_mb`; in local mode that JVM is the driver and its executors);
- pandas + statsmodels: read the file with pandas, then per metric an OLS y ~ arm (plus
  the covariate for CUPED; the linearized ratio for ratio metrics) with HC1 errors.

DuckDB runs are the best of `--repeat` (wall and CPU seconds, the latter summed over
threads and steadier on a shared machine); pandas runs once (it takes long enough to be
stable). Prints one line per contender and the ratios; `--json` prints one document.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAIN = [f"m{i:02d}" for i in range(1, 13)]  # m01..m06 are 0/1, m07..m12 continuous
CUPED = [f"c{i:02d}" for i in range(1, 5)]
RATIOS = [(f"num{i}", f"den{i}") for i in range(1, 5)]
COLUMNS = PLAIN + CUPED + [f"pre_{c}" for c in CUPED] + [c for pair in RATIOS for c in pair]


def _u(k: int) -> str:
    """A deterministic uniform(0, 1) per row and stream k, from DuckDB's hash."""
    return f"((hash(range * 97 + {k}) % 1000003) / 1000003.0)"


def make_file(path: Path, users: int) -> None:
    import duckdb

    cols = ["CASE WHEN range % 2 = 0 THEN 'control' ELSE 'treatment' END AS variant"]
    for i, m in enumerate(PLAIN):
        if i < 6:
            cols.append(f"CAST({_u(i)} < 0.05 + 0.01 * (range % 2) AS DOUBLE) AS {m}")
        else:
            cols.append(f"-ln(1 - {_u(i)}) * 30 + (range % 2) AS {m}")
    for i, c in enumerate(CUPED):
        base = f"-ln(1 - {_u(20 + i)}) * 50"
        cols.append(f"{base} * 0.8 + {_u(30 + i)} * 20 + (range % 2) AS {c}")
        cols.append(f"{base} AS pre_{c}")
    for i, (num, den) in enumerate(RATIOS):
        cols.append(f"floor({_u(40 + i)} * 10) + 1 AS {den}")
        cols.append(f"floor({_u(50 + i)} * (floor({_u(40 + i)} * 10) + 1) * 0.3) AS {num}")
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT {', '.join(cols)} FROM range({int(users)})) TO '{path}' "
        "(FORMAT parquet, ROW_GROUP_SIZE 1000000)"
    )
    con.close()


def run_upshot(path: str) -> dict[str, float]:
    from upshot.experiments import analyze

    t = time.perf_counter()
    a = analyze(
        table=path,
        metrics=PLAIN + CUPED,
        ratios=[f"{n}/{d}" for n, d in RATIOS],
        covariates=[f"{c}=pre_{c}" for c in CUPED],
    )
    seconds = time.perf_counter() - t
    if len(a.results) != 20 or any(r.status != "ok" for r in a.results):
        raise RuntimeError(f"unexpected analysis: {[(r.metric, r.status) for r in a.results]}")
    return {"seconds": seconds}


def run_spark(path: str) -> dict[str, float]:
    from upshot.config import Config
    from upshot.engines import open_spark
    from upshot.experiments import analyze

    t = time.perf_counter()
    engine = open_spark(Config())
    engine.fetch("SELECT 1 AS one", {}, "warm-up")  # the session starts here
    startup = time.perf_counter() - t
    t = time.perf_counter()
    a = analyze(
        table=path,
        metrics=PLAIN + CUPED,
        ratios=[f"{n}/{d}" for n, d in RATIOS],
        covariates=[f"{c}=pre_{c}" for c in CUPED],
        engine=engine,
    )
    seconds = time.perf_counter() - t
    if len(a.results) != 20 or any(r.status != "ok" for r in a.results):
        raise RuntimeError(f"unexpected analysis: {[(r.metric, r.status) for r in a.results]}")
    return {"seconds": seconds, "startup_seconds": startup}


def run_bare(path: str) -> dict[str, float]:
    import duckdb

    con = duckdb.connect()
    sums = ", ".join(f"sum({c})" for c in COLUMNS)
    t = time.perf_counter()
    con.execute(
        f"SELECT variant, count(*), {sums} FROM read_parquet($p) GROUP BY variant", {"p": path}
    ).fetchall()
    return {"seconds": time.perf_counter() - t}


def run_handsql(path: str) -> dict[str, float]:
    """The same sufficient statistics as upshot's query, written by hand: what the
    engine's generated SQL, checks and Python statistics cost on top of the arithmetic."""
    import duckdb

    con = duckdb.connect()
    aggs = [f"sum({c}), sum({c} * {c})" for c in COLUMNS]
    aggs += [f"sum({c} * pre_{c})" for c in CUPED] + [f"sum({n} * {d})" for n, d in RATIOS]
    t = time.perf_counter()
    con.execute(
        f"SELECT variant, count(*), {', '.join(aggs)} FROM read_parquet($p) GROUP BY variant",
        {"p": path},
    ).fetchall()
    return {"seconds": time.perf_counter() - t}


def run_pandas(path: str) -> dict[str, float]:
    import numpy as np
    import pandas as pd
    import statsmodels.api as sm

    t = time.perf_counter()
    df = pd.read_parquet(path)
    treat = (df["variant"] == "treatment").to_numpy(dtype=float)
    base = sm.add_constant(treat)
    for m in PLAIN:
        sm.OLS(df[m].to_numpy(), base).fit(cov_type="HC1")
    for c in CUPED:
        x = np.column_stack([base, df[f"pre_{c}"].to_numpy()])
        sm.OLS(df[c].to_numpy(), x).fit(cov_type="HC1")
    for num, den in RATIOS:
        lin = np.empty(len(df))
        for arm in (0.0, 1.0):
            sel = treat == arm
            n, d = df[num].to_numpy()[sel], df[den].to_numpy()[sel]
            lin[sel] = (n - n.sum() / d.sum() * d) / d.mean() + n.sum() / d.sum()
        sm.OLS(lin, base).fit(cov_type="HC1")
    return {"seconds": time.perf_counter() - t}


RUNNERS = {
    "upshot": run_upshot,
    "spark": run_spark,
    "bare": run_bare,
    "handsql": run_handsql,
    "pandas": run_pandas,
}


def _peak_mb() -> float:
    """This process's peak resident memory. VmHWM belongs to the address space made by
    exec; ru_maxrss would carry over the parent's peak through fork."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _warm_imports(name: str) -> None:
    """Import what a contender needs before the clock starts: engines are compared, not
    interpreter start-up (upshot's import costs about a second, scipy's mostly)."""
    if name == "upshot":
        import upshot.experiments  # noqa: F401
    elif name == "pandas":
        import pandas  # noqa: F401
        import statsmodels.api  # noqa: F401
    import duckdb  # noqa: F401


def child(name: str, path: str) -> None:
    _warm_imports(name)
    before = _cpu()
    result = RUNNERS[name](path)
    # CPU seconds (all threads) are steadier than wall time on a shared machine
    result["cpu_seconds"] = _cpu() - before
    result["peak_mb"] = _peak_mb()
    if name == "spark":
        from _peak import spark_jvm_peak_mb

        result["jvm_peak_mb"] = spark_jvm_peak_mb()
        result["peak_mb"] += result["jvm_peak_mb"]
    sys.stdout.write(json.dumps(result) + "\n")


def measure(name: str, path: Path) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", name, "--file", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--engine", choices=("duckdb", "spark"), default="duckdb",
        help="spark: time the Spark engine beside DuckDB's upshot run (interleaved)",
    )  # fmt: skip
    parser.add_argument("--child", choices=list(RUNNERS))
    parser.add_argument("--file")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.file)
        return
    with tempfile.TemporaryDirectory(prefix="bench_experiments_") as tmp:
        path = Path(tmp) / "users.parquet"
        t = time.perf_counter()
        make_file(path, args.users)
        made = time.perf_counter() - t
        runs: dict[str, list[dict[str, float]]] = {"upshot": [], "bare": [], "handsql": []}
        if args.engine == "spark":
            runs["spark"] = []
        for _ in range(args.repeat):
            for name in runs:  # interleaved, so the page cache favours none
                runs[name].append(measure(name, path))
        best = {
            k: {
                "seconds": min(r["seconds"] for r in v),
                "cpu_seconds": min(r["cpu_seconds"] for r in v),
                "peak_mb": max(r["peak_mb"] for r in v),
            }
            for k, v in runs.items()
        }
        if not args.skip_pandas:
            best["pandas"] = measure("pandas", path)
        size_mb = path.stat().st_size / 1e6
    doc = {
        "users": args.users,
        "metrics": 20,
        "file_mb": round(size_mb, 1),
        "generate_seconds": round(made, 2),
        "results": best,
        "upshot_vs_bare": best["upshot"]["seconds"] / best["bare"]["seconds"],
        "upshot_vs_bare_cpu": best["upshot"]["cpu_seconds"] / best["bare"]["cpu_seconds"],
        "upshot_vs_handsql": best["upshot"]["seconds"] / best["handsql"]["seconds"],
        "upshot_vs_handsql_cpu": best["upshot"]["cpu_seconds"] / best["handsql"]["cpu_seconds"],
        "spark_vs_upshot": (
            best["spark"]["seconds"] / best["upshot"]["seconds"] if "spark" in best else None
        ),
        "load_average": os.getloadavg(),
        "pandas_vs_upshot": (
            best["pandas"]["seconds"] / best["upshot"]["seconds"] if "pandas" in best else None
        ),
    }
    if args.json:
        sys.stdout.write(json.dumps(doc) + "\n")
        return
    print(f"{args.users:,} users x 2 arms x 20 metrics, Parquet {size_mb:,.0f} MB")
    for name, r in best.items():
        print(
            f"  {name:8s} {r['seconds']:8.2f} s wall  {r['cpu_seconds']:8.2f} s cpu"
            f"   peak {r['peak_mb']:8.0f} MB"
        )
    print(
        f"  upshot / bare SUM pass:       {doc['upshot_vs_bare']:.2f}x wall, "
        f"{doc['upshot_vs_bare_cpu']:.2f}x cpu  (target <= 1.3x)"
    )
    print(
        f"  upshot / hand-written SQL of the same statistics: {doc['upshot_vs_handsql']:.2f}x "
        f"wall, {doc['upshot_vs_handsql_cpu']:.2f}x cpu"
    )
    if doc["spark_vs_upshot"]:
        sp = runs["spark"]
        print(
            f"  spark / upshot (DuckDB): {doc['spark_vs_upshot']:.2f}x wall (target <= 5x); "
            f"spark runs {[round(r['seconds'], 1) for r in sp]} s, session start "
            f"{min(r['startup_seconds'] for r in sp):.1f} s, driver peak "
            f"{max(r['peak_mb'] for r in sp):.0f} MB (python + JVM; target < 2048)"
        )
    print(f"  load average {doc['load_average']}")
    if doc["pandas_vs_upshot"]:
        print(f"  pandas+statsmodels / upshot: {doc['pandas_vs_upshot']:.1f}x  (target >= 40x)")


if __name__ == "__main__":
    main()
