"""`upshot demo`: simulate a world, then run the weekly job on every simulated week.

The world has a history cohort (`simulate --longterm`): the weekly job projects every
class's long-term effect from it and backtests the projection, which flags the planted
`resume_watching_push` (its long-term harm does not show in 7 days).

The demo folder is self-describing: `data/` (the simulated input files and truth.json),
`upshot.toml` (paths relative to the folder, and uplift settings sized for a laptop),
`upshot.duckdb`, `reports/<week>/` and `weights/`. `cd` into it and every `upshot`
command works on the demo warehouse. Rerunning the demo replaces its own folder's
contents and nothing else.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from upshot import period
from upshot.errors import UsageError
from upshot.pipeline.job import JobResult, WeekResult, outcome, run

if TYPE_CHECKING:
    from upshot.config import Config
    from upshot.pipeline.stages import Progress

MARKER = ".upshot-demo"
DEFAULT_USERS = 10_000
DEFAULT_WEEKS = 4
START = date(2026, 10, 19)
# what a previous demo left, removed before the next one (nothing else in the folder is)
OURS = (
    *(MARKER, "data", "upshot.toml", "reports", "weights", ".upshot_tmp"),
    *(f"upshot.duckdb{suffix}" for suffix in ("", ".wal", ".lock", ".run.lock")),
)

# The demo's upshot.toml: defaults everywhere except paths and the uplift's cost knobs.
TOML = """\
# Written by `upshot demo`: the simulated world in data/, everything else beside it.
# Paths are relative to this folder: run upshot commands from here.
[warehouse]
path = "upshot.duckdb"

[load]
sources = {{ users = "data/users.parquet", assignments = "data/assignments.parquet", \
sends = "data/sends", outcomes = "data/outcomes" }}

[uplift]
# sized to run every demo week in a few minutes on 2 cores; see upshot.toml's defaults
nuisance = "{nuisance}"
folds = {folds}
refute_sample = {refute_sample}
refute_simulations = {refute_simulations}
nuisance_max_rows = {nuisance_max_rows}
jobs = {jobs}

[longterm]
# the history cohort (decisions 34 weeks before the first week, 180-day outcomes observed)
# teaches the projection; 2 folds like the uplift above keep the 4 weeks quick
folds = {longterm_folds}

[report]
directory = "reports"

[governance]
directory = "weights"
# a 10,000-user world cannot resolve opt-out effects of 0.2 points a send in a week, so
# every class would fail the default guardrail; 1 point still stops the planted harm
max_optout_harm = 0.01
# its weekly estimates also move more than a large platform's: a looser circuit breaker
# (0.7: the long-term projections priced below move the small weights more; the fourth
# week moves 5 of 8 classes, where the 7-day policy moved 4 of 8)
drift_threshold = 1.0
drift_max_share = 0.7

[governance.rates]
# retention is valued on its long-term projection: 1 value unit per active day in the
# 180 days after a send (as the default rate prices a day of the 7-day window), and the
# 7-day retention carries no rate of its own (the projection already counts it). A class
# the backtest flags is not priced on its projection: weight 0, failed:surrogacy_violated
conversion = 100.0
engagement = 0.05
retention = 0.0
retention_180d = 1.0
reachability = -25.0
"""
UPLIFT = {
    "nuisance": "lightgbm",
    "folds": 2,
    "refute_sample": 2000,
    "refute_simulations": 2,
    "nuisance_max_rows": 20_000,
    "jobs": 2,
}

LONGTERM_FOLDS = 2


@dataclass(frozen=True, slots=True)
class DemoResult:
    """Where the demo wrote everything, and the weekly job's result over all weeks."""

    out: Path
    weeks: tuple[str, ...]
    job: JobResult
    planted: dict[str, Any]
    seconds: float

    def document(self) -> dict[str, Any]:
        last = self.job.weeks[-1].report if self.job.weeks else None
        return {
            "out": str(self.out),
            "config": str(self.out / "upshot.toml"),
            "warehouse": str(self.out / "upshot.duckdb"),
            "weeks": list(self.weeks),
            "reports": [str(w.report.directory / "index.html") for w in self.job.weeks if w.report],
            "latest_report": str(last.directory / "index.html") if last else None,
            "weights": str(self.out / "weights" / "latest.json"),
            "planted": self.planted,
            "seconds": self.seconds,
            "job": self.job.document(),
        }


def prepare(out: Path) -> None:
    """Make `out` ready: new, empty, or a previous demo (whose outputs are removed)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, must be a directory")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise UsageError(
                f"--out {out} is not empty and is not an upshot demo folder (no {MARKER}): "
                "refusing to write into it"
            )
        for name in OURS:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by `upshot demo`; rerunning it replaces this folder\n")


def demo_config(out: Path) -> Config:
    """The demo's upshot.toml, written to `out`, loaded with paths made absolute."""
    from upshot.config import load_config

    path = out / "upshot.toml"
    path.write_text(TOML.format(**UPLIFT, longterm_folds=LONGTERM_FOLDS), encoding="utf-8")
    config = load_config(path)
    root = out.resolve()

    def inside(text: str) -> str:
        return str(root / text)

    return dataclasses.replace(
        config,
        warehouse=dataclasses.replace(
            config.warehouse,
            path=inside(config.warehouse.path),
            temp_directory=inside(config.warehouse.temp_directory),
        ),
        load=dataclasses.replace(
            config.load, sources={k: inside(v) for k, v in config.load.sources.items()}
        ),
        report=dataclasses.replace(config.report, directory=inside(config.report.directory)),
        governance=dataclasses.replace(
            config.governance, directory=inside(config.governance.directory)
        ),
    )


def demo(
    out: str | Path = "demo_out",
    *,
    users: int = DEFAULT_USERS,
    weeks: int = DEFAULT_WEEKS,
    seed: int = 7,
    progress: Progress | None = None,
) -> DemoResult:
    """Simulate `users` users over `weeks` weeks into `out/data`, then `run` every week
    in order (alerts never fail the demo: the planted harmful class is meant to fire)."""
    from upshot.simulate import simulate

    began = time.perf_counter()
    out = Path(out)
    prepare(out)
    if progress:
        progress(f"simulating {users:,} users over {weeks} weeks into {out / 'data'} ...")
    simulate(out / "data", users=users, weeks=weeks, seed=seed, start=START, longterm=True)
    config = demo_config(out)
    listed = tuple(period.week_of(START + timedelta(weeks=i)) for i in range(weeks))
    results: list[WeekResult] = []
    for week in listed:
        job = run(config, config.warehouse.path, week, fail_on="never", progress=progress)
        results.extend(job.weeks)
    planted = json.loads((out / "data" / "truth.json").read_text())["planted"]
    planted = {k: v for k, v in planted.items() if k != "classes"}
    seconds = round(time.perf_counter() - began, 1)
    return DemoResult(out, listed, outcome(tuple(results), "never"), planted, seconds)
