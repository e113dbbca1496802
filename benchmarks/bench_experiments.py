"""Benchmark: the experiments engine against a bare SUM pass and pandas + statsmodels.

    .venv/bin/python benchmarks/bench_experiments.py --users 10000000 --repeat 3
    .venv/bin/python benchmarks/bench_experiments.py --users 10000000 --engine spark
    .venv/bin/python benchmarks/bench_experiments.py --users 10000000 --data /tmp/u.parquet

Writes a user-level Parquet file (2 arms, 20 metrics: 12 plain (6 of them 0/1), 4 CUPED
metrics with a pre-period covariate each, 4 ratio metrics; `--data PATH` keeps it there
and reuses it), then times, each run in its own fresh process so that peak memory (max
RSS) is its own:

- upshot: `upshot.experiments.analyze(table=...)`, the SQL sufficient statistics in one
  pass plus every test, CI and correction in Python; split into its phases: `metadata`
  (the file's columns and Parquet footers), `pass` (the aggregate query), `statistics`
  (the tests, CIs and corrections in Python) and the rest;
- bare SUM: one DuckDB pass `SELECT variant, count(*), sum(col)... GROUP BY variant` over
  the same columns, the least any engine must do to read them;
- hand-written SQL: the same pass computing the same sums, squares and cross-products as
  upshot's generated query (what upshot adds on top of the arithmetic itself);
- spark (with `--engine spark`): the same `analyze` with the passes on Spark
  (`[engine]` defaults: local[2], driver memory 1g), the session started before the clock
  (`startup_seconds`); its peak memory is the Python driver's plus the Spark JVM's
  (`jvm_peak_mb`; in local mode that JVM is the driver and its executors); beside it
  spark_warm, the same analysis timed the second time in its session (as a long-lived
  Spark Connect server or notebook runs it: JIT-compiled, the file already listed);
  spark_bare, the bare SUM pass on Spark, Spark's own floor for reading the columns;
- pandas + statsmodels: read the file with pandas, then per metric the statistic upshot
  reports, as an analyst would fit it: OLS y ~ arm with HC0 errors for a 0/1 metric (the
  unpooled proportions z), HC2 for a mean (Welch), CUPED as y - theta (x - mean x) with
  the pooled within-arm slope, then HC2, and a ratio's linearization with HC2. Its
  effects and standard errors are checked against upshot's (`pandas_max_rel_diff`), so
  both compute the same statistics.

Every contender runs `--repeat` times, interleaved (upshot, bare, handsql, pandas, ...,
so that neither the page cache nor a burst of load favours one); each is reported by its
min and median, wall and CPU seconds (the latter summed over threads, steadier on a
shared machine), with the load average before and after. Imports are done before the
clock (engines are compared, not interpreter start-up; upshot's import is reported as
`import_seconds`). Prints one line per contender, the breakdown and the ratios; `--json`
prints one document.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PLAIN = [f"m{i:02d}" for i in range(1, 13)]  # m01..m06 are 0/1, m07..m12 continuous
CUPED = [f"c{i:02d}" for i in range(1, 5)]
RATIOS = [(f"num{i}", f"den{i}") for i in range(1, 5)]
COLUMNS = PLAIN + CUPED + [f"pre_{c}" for c in CUPED] + [c for pair in RATIOS for c in pair]


def _u(k: int) -> str:
    """A deterministic uniform(0, 1) per row and stream k, from DuckDB's hash."""
    return f"((hash(range * 97 + {k}) % 1000003) / 1000003.0)"


def make_file(path: Path, users: int, flags: str = "double") -> None:
    """The users file; `flags` is the type of the 0/1 metrics (DOUBLE or INTEGER)."""
    import duckdb

    cols = ["CASE WHEN range % 2 = 0 THEN 'control' ELSE 'treatment' END AS variant"]
    for i, m in enumerate(PLAIN):
        if i < 6:
            kind = "INTEGER" if flags == "integer" else "DOUBLE"
            cols.append(f"CAST({_u(i)} < 0.05 + 0.01 * (range % 2) AS {kind}) AS {m}")
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


def _timed(owner: object, name: str, into: dict[str, float]) -> None:
    """Wrap `owner.name` so that its seconds add up in `into[name]` (a measurement only)."""
    inner = getattr(owner, name)

    def wrapper(*args: object, **kwargs: object) -> object:
        t = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            into[name] = into.get(name, 0.0) + time.perf_counter() - t

    setattr(owner, name, wrapper)


def _estimates(results: object) -> dict[str, list[float]]:
    return {r.metric: [r.effect, r.effect_se] for r in results}  # type: ignore[attr-defined]


def run_upshot(path: str) -> dict[str, object]:
    from upshot.experiments import analysis
    from upshot.experiments.sources import Prepared

    phases: dict[str, float] = {}
    _timed(analysis, "prepare_table", phases)  # the columns and the Parquet footers
    _timed(Prepared, "rows", phases)  # the aggregate pass
    _timed(analysis, "analyze_rows", phases)  # the statistics (and any second pass)
    t = time.perf_counter()
    a = _analyze(path)
    seconds = time.perf_counter() - t
    metadata = phases.get("prepare_table", 0.0)
    sql = phases.get("rows", 0.0)
    stats = phases.get("analyze_rows", 0.0)
    return {
        "seconds": seconds,
        "metadata_seconds": metadata,
        "pass_seconds": sql,
        "statistics_seconds": stats,
        "other_seconds": seconds - metadata - sql - stats,
        "estimates": _estimates(a.results),
    }


def _analyze(path: str, engine: Any = None) -> Any:
    """The benchmark's analysis (20 metrics), checked to have every metric `ok`."""
    from upshot.experiments import analyze

    a = analyze(
        table=path,
        metrics=PLAIN + CUPED,
        ratios=[f"{n}/{d}" for n, d in RATIOS],
        covariates=[f"{c}=pre_{c}" for c in CUPED],
        engine=engine,
    )
    if len(a.results) != 20 or any(r.status != "ok" for r in a.results):
        raise RuntimeError(f"unexpected analysis: {[(r.metric, r.status) for r in a.results]}")
    return a


def run_spark(path: str, warm: bool = False) -> dict[str, float]:
    """`analyze` on Spark in a session started before the clock; `warm`: timed the second
    time in that session, as a long-lived session (a Spark Connect server, a notebook)
    runs it, with the JVM's compiled code and the file's listing already made."""
    from upshot.config import Config
    from upshot.engines import open_spark

    t = time.perf_counter()
    engine = open_spark(Config())
    engine.fetch("SELECT 1 AS one", {}, "warm-up")  # the session starts here
    startup = time.perf_counter() - t
    for _ in range(2 if warm else 1):
        t = time.perf_counter()
        _analyze(path, engine)
        seconds = time.perf_counter() - t
    return {"seconds": seconds, "startup_seconds": startup}


def run_spark_warm(path: str) -> dict[str, float]:
    return run_spark(path, warm=True)


def run_spark_bare(path: str) -> dict[str, float]:
    """The bare SUM pass on Spark, in the session upshot's engine opens: Spark's own floor
    for reading the columns on this machine, beside which its `analyze` is measured."""
    from upshot.config import Config
    from upshot.engines import open_spark

    engine = open_spark(Config())
    engine.fetch("SELECT 1 AS one", {}, "warm-up")
    sums = ", ".join(f"sum({c})" for c in COLUMNS)
    t = time.perf_counter()
    engine.fetch(
        f"SELECT variant, count(*), {sums} FROM read_parquet($p) GROUP BY variant",
        {"p": path},
        "bare",
    )
    return {"seconds": time.perf_counter() - t}


def run_bare(path: str) -> dict[str, float]:
    """The bare pass; the connection is opened inside the clock, as `analyze` opens its."""
    import duckdb

    sums = ", ".join(f"sum({c})" for c in COLUMNS)
    t = time.perf_counter()
    con = duckdb.connect()
    con.execute(
        f"SELECT variant, count(*), {sums} FROM read_parquet($p) GROUP BY variant", {"p": path}
    ).fetchall()
    return {"seconds": time.perf_counter() - t}


def integer_flags(path: str) -> list[str]:
    """The 0/1 metrics stored as integers (`--flags integer`)."""
    import duckdb

    kinds = duckdb.connect().execute(
        "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet($p))",
        {"p": path},
    )
    return [c for c, kind in kinds.fetchall() if c in PLAIN[:6] and "INT" in kind.upper()]


def run_handsql(path: str) -> dict[str, float]:
    """The same sufficient statistics as upshot's query, written by hand: what the
    engine's generated SQL, checks and Python statistics cost on top of the arithmetic.
    As upshot's, it leaves out the squares of 0/1 metrics stored as integers (they equal
    the sums); a DOUBLE column could hold 0.5, so those are aggregated."""
    import duckdb

    ones = integer_flags(path)
    aggs = [f"sum({c})" + ("" if c in ones else f", sum({c} * {c})") for c in COLUMNS]
    aggs += [f"sum({c} * pre_{c})" for c in CUPED] + [f"sum({n} * {d})" for n, d in RATIOS]
    t = time.perf_counter()
    con = duckdb.connect()
    con.execute(
        f"SELECT variant, count(*), {', '.join(aggs)} FROM read_parquet($p) GROUP BY variant",
        {"p": path},
    ).fetchall()
    return {"seconds": time.perf_counter() - t}


def run_pandas(path: str) -> dict[str, object]:
    """upshot's statistics with pandas and statsmodels OLS, as an analyst would fit them."""
    import numpy as np
    import pandas as pd
    import statsmodels.api as sm

    t = time.perf_counter()
    df = pd.read_parquet(path)
    treat = (df["variant"] == "treatment").to_numpy(dtype=float)
    base = sm.add_constant(treat)
    arms = [treat == 0.0, treat == 1.0]
    out: dict[str, list[float]] = {}

    def fit(name: str, y: object, cov_type: str) -> None:
        res = sm.OLS(y, base).fit(cov_type=cov_type)
        out[name] = [float(res.params[1]), float(res.bse[1])]

    for i, m in enumerate(PLAIN):
        # a 0/1 metric: the unpooled proportions z is HC0; a mean's Welch t is HC2
        fit(m, df[m].to_numpy(), "HC0" if i < 6 else "HC2")
    for c in CUPED:
        y, x = df[c].to_numpy(), df[f"pre_{c}"].to_numpy()
        # CUPED: one slope from the within-arm (co)variances pooled with weights n - 1
        sxy = sum(np.cov(y[a], x[a])[0, 1] * (a.sum() - 1) for a in arms)
        sxx = sum(np.var(x[a], ddof=1) * (a.sum() - 1) for a in arms)
        fit(c, y - sxy / sxx * (x - x.mean()), "HC2")
    for num, den in RATIOS:
        lin = np.empty(len(df))
        for sel in arms:
            n, d = df[num].to_numpy()[sel], df[den].to_numpy()[sel]
            lin[sel] = (n - n.sum() / d.sum() * d) / d.mean() + n.sum() / d.sum()
        fit(f"{num}/{den}", lin, "HC2")
    return {"seconds": time.perf_counter() - t, "estimates": out}


RUNNERS: dict[str, Callable[[str], dict[str, Any]]] = {
    "upshot": run_upshot,
    "spark": run_spark,
    "spark_warm": run_spark_warm,
    "spark_bare": run_spark_bare,
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
    t = time.perf_counter()
    _warm_imports(name)
    imported = time.perf_counter() - t
    before = _cpu()
    result = RUNNERS[name](path)
    # CPU seconds (all threads) are steadier than wall time on a shared machine
    result["cpu_seconds"] = _cpu() - before
    result["import_seconds"] = imported
    result["peak_mb"] = _peak_mb()
    if name.startswith("spark"):
        from _peak import spark_jvm_peak_mb

        result["jvm_peak_mb"] = spark_jvm_peak_mb()
        result["peak_mb"] += result["jvm_peak_mb"]
    sys.stdout.write(json.dumps(result) + "\n")


def measure(name: str, path: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", name, "--file", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


_SUMMED = ("seconds", "cpu_seconds", "metadata_seconds", "pass_seconds",
           "statistics_seconds", "other_seconds", "import_seconds", "startup_seconds")  # fmt: skip


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Min and median of every timing over the runs, the largest peak memory."""
    out: dict[str, Any] = {"runs": len(runs)}
    for key in _SUMMED:
        values = [r[key] for r in runs if key in r]
        if values:
            out[key] = min(values)
            out[f"{key}_median"] = statistics.median(values)
    out["peak_mb"] = max(r["peak_mb"] for r in runs)
    if any("jvm_peak_mb" in r for r in runs):
        out["jvm_peak_mb"] = max(r.get("jvm_peak_mb", 0.0) for r in runs)
    return out


def max_rel_diff(a: dict[str, list[float]], b: dict[str, list[float]]) -> float:
    """The largest relative difference between two sets of (effect, standard error)."""
    if a.keys() != b.keys():
        raise RuntimeError(f"different metrics: {sorted(a)} vs {sorted(b)}")
    return max(abs(x - y) / max(abs(y), 1e-300) for k in a for x, y in zip(a[k], b[k], strict=True))


def _ratio(doc: dict[str, Any], a: str, b: str, key: str) -> float | None:
    r = doc["results"]
    if a not in r or b not in r:
        return None
    return float(r[a][key] / r[b][key])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument(
        "--data", type=Path,
        help="the Parquet file to use: written there if absent (with --users), else reused",
    )  # fmt: skip
    parser.add_argument(
        "--flags", choices=("double", "integer"), default="double",
        help="the type of the six 0/1 metrics in a new file: DOUBLE (their squares are "
        "aggregated) or INTEGER (0/1 known from type and footers: not)",
    )  # fmt: skip
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
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_experiments_") as tmp:
        path = args.data or Path(tmp) / "users.parquet"
        t = time.perf_counter()
        if not path.exists():
            make_file(path, args.users, args.flags)
        made = time.perf_counter() - t
        import duckdb

        row = duckdb.connect().execute("SELECT count(*) FROM read_parquet($p)", {"p": str(path)})
        users = row.fetchall()[0][0]
        flags = integer_flags(str(path))
        names = ["upshot", "bare", "handsql"]
        names += ["spark", "spark_warm", "spark_bare"] if args.engine == "spark" else []
        names += [] if args.skip_pandas else ["pandas"]
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for _ in range(args.repeat):
            for name in names:  # interleaved, so the page cache favours none
                runs[name].append(measure(name, path))
        size_mb = path.stat().st_size / 1e6
    best = {k: summarize(v) for k, v in runs.items()}
    doc: dict[str, Any] = {
        "users": users,
        "metrics": 20,
        "integer_flags": flags,
        "file_mb": round(size_mb, 1),
        "generate_seconds": round(made, 2),
        "results": best,
        "load_average_before": load_before,
        "load_average": os.getloadavg(),
    }
    for a, b in (("upshot", "bare"), ("upshot", "handsql"), ("handsql", "bare"),
                 ("spark", "upshot"), ("spark_warm", "upshot"), ("spark_bare", "bare"),
                 ("spark", "spark_bare"),
                 ("pandas", "upshot")):  # fmt: skip
        doc[f"{a}_vs_{b}"] = _ratio(doc, a, b, "seconds")
        doc[f"{a}_vs_{b}_median"] = _ratio(doc, a, b, "seconds_median")
        doc[f"{a}_vs_{b}_cpu"] = _ratio(doc, a, b, "cpu_seconds")
    if "pandas" in runs:
        doc["pandas_max_rel_diff"] = max(
            max_rel_diff(p["estimates"], u["estimates"])
            for p, u in zip(runs["pandas"], runs["upshot"], strict=True)
        )
    if args.json:
        sys.stdout.write(json.dumps(doc) + "\n")
        return
    _print(doc, runs)


def _print(doc: dict[str, Any], runs: dict[str, list[dict[str, Any]]]) -> None:
    best = doc["results"]
    print(
        f"{doc['users']:,} users x 2 arms x 20 metrics, Parquet {doc['file_mb']:,.0f} MB; "
        f"{best['upshot']['runs']} interleaved runs each, fresh process each; 0/1 metrics "
        f"stored as {'INTEGER' if doc['integer_flags'] else 'DOUBLE'}"
    )
    print(
        f"  {'':10s} {'wall min':>9s} {'median':>7s} {'cpu min':>8s} {'median':>7s} {'peak MB':>8s}"
    )
    for name, r in best.items():
        print(
            f"  {name:10s} {r['seconds']:9.2f} {r['seconds_median']:7.2f} {r['cpu_seconds']:8.2f}"
            f" {r['cpu_seconds_median']:7.2f} {r['peak_mb']:8.0f}"
        )
    u = best["upshot"]
    print(
        f"  upshot's phases (min over runs, s): metadata {u['metadata_seconds']:.3f}, "
        f"pass {u['pass_seconds']:.3f}, statistics {u['statistics_seconds']:.3f}, "
        f"other {u['other_seconds']:.3f}; import before the clock {u['import_seconds']:.2f}"
    )
    print(
        f"  pass / hand-written SQL: {u['pass_seconds'] / best['handsql']['seconds']:.2f}x wall; "
        f"upshot adds {u['seconds'] - best['handsql']['seconds']:+.3f} s wall over it"
    )
    for a, b, what in (
        ("handsql", "bare", "hand-written SQL of the same statistics / bare SUM pass"),
        ("upshot", "bare", "upshot / bare SUM pass (target <= 1.3x)"),
        ("upshot", "handsql", "upshot / hand-written SQL"),
    ):
        print(
            f"  {what}: {doc[f'{a}_vs_{b}']:.2f}x wall min, {doc[f'{a}_vs_{b}_median']:.2f}x "
            f"median, {doc[f'{a}_vs_{b}_cpu']:.2f}x cpu"
        )
    if doc["spark_vs_upshot"]:
        sp = runs["spark"]
        print(
            f"  spark / upshot (DuckDB): {doc['spark_vs_upshot']:.2f}x wall (target <= 5x); "
            f"spark runs {[round(r['seconds'], 1) for r in sp]} s, session start "
            f"{min(r['startup_seconds'] for r in sp):.1f} s, driver peak "
            f"{max(r['peak_mb'] for r in sp):.0f} MB (python + JVM; target < 2048)"
        )
        print(
            f"  spark_warm / upshot (DuckDB): {doc['spark_warm_vs_upshot']:.2f}x wall min, "
            f"{doc['spark_warm_vs_upshot_median']:.2f}x median (the analysis again in the "
            f"same session: a long-lived Spark Connect server or notebook)"
        )
        print(
            f"  spark bare SUM pass / DuckDB's: {doc['spark_bare_vs_bare']:.2f}x wall min "
            f"(Spark's floor on this machine); spark analyze / spark bare SUM pass: "
            f"{doc['spark_vs_spark_bare']:.2f}x"
        )
    if doc["pandas_vs_upshot"]:
        print(
            f"  pandas+statsmodels / upshot: {doc['pandas_vs_upshot']:.1f}x wall min, "
            f"{doc['pandas_vs_upshot_median']:.1f}x median, {doc['pandas_vs_upshot_cpu']:.1f}x cpu "
            f"(target >= 40x); same statistics: largest relative difference of the effects "
            f"and standard errors {doc['pandas_max_rel_diff']:.1e}"
        )
        if doc["pandas_max_rel_diff"] > 1e-6:  # float sums in another order differ by ~1e-12
            print("  WARNING: pandas did not compute upshot's statistics; the ratio is void")
    print(f"  load average before {doc['load_average_before']}, after {doc['load_average']}")


if __name__ == "__main__":
    main()
