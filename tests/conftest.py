"""Shared fixtures: a CLI runner and small contract files made on the fly."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


# Modules that each take a minute or more of one worker (from `pytest --durations`), run
# first so that `make test`'s two workers finish together instead of one waiting on a long
# test collected last; the Spark tests (tests/engines) go to one worker as one group, the
# largest, so it starts first. Scheduling only: every test still runs.
LONG_MODULES = (
    "test_readme.py",
    "test_ray_crossfit.py",
    "test_ray_backend.py",
    "test_surrogate_coverage.py",
    "test_pipeline.py",
    "test_surrogate_history_error.py",
    "test_uplift_budget.py",
    "test_docs.py",
    "test_uplift_bias.py",
    "test_ebci.py",
)


# Modules whose module-scoped fixture builds a world for several seconds: xdist builds a
# module fixture once per worker that runs one of its tests, so spread over both workers
# each of these was built twice (66 s of setup for test_pipeline's one world). One group
# per module keeps its tests, and its fixture, on one worker.
SHARED_FIXTURE_MODULES = (
    "test_pipeline.py",
    "test_longterm_world.py",
    "test_load_simulated.py",
    "test_backtest.py",
    "test_lake_equivalence.py",
    "test_shared.py",
    "test_render.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONG_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
    for item in items:
        if "engines" in item.path.parts:
            # one worker runs every Spark test in one JVM (`make test` uses --dist loadgroup)
            item.add_marker(pytest.mark.xdist_group("spark"))
        elif item.path.name in SHARED_FIXTURE_MODULES:
            item.add_marker(pytest.mark.xdist_group(item.path.name))


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> CliResult:
    """Run `upshot` in-process, capturing stdout, stderr and the exit code."""
    from upshot.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_env = dict(os.environ)
    old_cwd = Path.cwd()
    try:
        os.environ.update(env or {})
        if cwd:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.environ.clear()
        os.environ.update(old_env)
        os.chdir(old_cwd)
    return CliResult(code, out.getvalue(), err.getvalue())


def run_subprocess(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> CliResult:
    """Run `python -m upshot` in a fresh process (for time zones, locks and kills)."""
    proc = subprocess.run(
        [sys.executable, "-m", "upshot", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli():
    return run_cli
