"""Building `reports/<week>/` and replacing the previous one in a single step.

The folder holds `index.html` (self-contained), `summary.md`, `alerts.json`,
`charts/<name>.png` and `.svg` for every chart, and `provenance.json` (the runs and the
weights version behind the numbers: the one file that changes when the same week is
rerun on the same data, because runs get new ids). Everything is written to a hidden
temporary folder first and then swapped in, so a reader never sees a half-written report.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from upshot.reports import alerts as alert_rules
from upshot.reports import charts as chart_builders
from upshot.reports import html, render, summary
from upshot.reports.data import report_data
from upshot.results import dumps

if TYPE_CHECKING:
    import duckdb

    from upshot.config import Config
    from upshot.reports.alerts import Alerts
    from upshot.reports.data import ReportData

_RENAME_EXCHANGE = 2


@dataclass(frozen=True, slots=True)
class WeeklyReport:
    """What `build` wrote: the folder, its files (relative paths, sorted) and the alerts."""

    week: str
    directory: Path
    files: tuple[str, ...]
    alerts: Alerts
    data: ReportData

    def document(self) -> dict[str, Any]:
        return {
            "week": self.week,
            "directory": str(self.directory),
            "index": str(self.directory / "index.html"),
            "files": list(self.files),
            "alerts": self.alerts.document(),
            "suppressed_cells": self.data.suppressed,
        }


def write_folder(
    folder: Path,
    data: ReportData,
    alerts: Alerts,
    config: Config,
    provenance: dict[str, Any],
) -> list[str]:
    """Every report file under `folder` (which must exist); returns their relative paths."""
    gov = config.governance
    built = chart_builders.charts(data, gov.max_optout_harm, gov.optout_objective)
    for chart in built:
        render.write_images(chart.name, chart.spec, folder / "charts")
    page = html.page(data, alerts, built, config, bundle=render.javascript())
    (folder / "index.html").write_text(page, encoding="utf-8")
    (folder / "summary.md").write_text(summary.markdown(data, alerts), encoding="utf-8")
    (folder / "alerts.json").write_text(_pretty(alerts.document()), encoding="utf-8")
    (folder / "provenance.json").write_text(_pretty(provenance), encoding="utf-8")
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _pretty(document: Any) -> str:
    return json.dumps(json.loads(dumps(document)), indent=2, sort_keys=True) + "\n"


def build(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    week: str,
    *,
    directory: str | Path | None = None,
    weights_dir: str | Path | None = None,
    stages: Sequence[dict[str, Any]] | None = None,
    pins: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
) -> WeeklyReport:
    """Read `week` from the warehouse and (re)write `<directory>/<week>/` in one swap.

    `directory` defaults to `report.directory`; `stages` is the weekly job's per-stage
    status (shown under data health and turned into alerts); `pins` the runs and weights
    version to report (see `report_data`).
    """
    data = report_data(con, config, week, weights_dir=weights_dir, stages=stages, pins=pins)
    alerts = alert_rules.evaluate(data, config)
    root = Path(directory or config.report.directory)
    root.mkdir(parents=True, exist_ok=True)
    target = root / data.week
    _remove_stale(root, data.week)
    temporary = root / f".{data.week}.tmp-{uuid.uuid4().hex[:8]}"
    temporary.mkdir()
    try:
        files = write_folder(
            temporary,
            data,
            alerts,
            config,
            {"week": data.week, **data.sources, **(provenance or {})},
        )
        replace_folder(temporary, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return WeeklyReport(data.week, target, tuple(files), alerts, data)


STALE_SECONDS = 3600


def _remove_stale(root: Path, week: str) -> None:
    """Temporary folders a killed build left (old enough that no build still writes them)."""
    now = time.time()
    for path in root.glob(f".{week}.tmp-*"):
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(path, ignore_errors=True)


def replace_folder(new: Path, target: Path) -> None:
    """Put `new` at `target`. When `target` exists the two are exchanged atomically
    (Linux renameat2) and the old content ends up at `new`, for the caller to delete;
    elsewhere the old folder is moved aside first, leaving a moment without one."""
    if not target.exists():
        new.rename(target)
        new.mkdir()  # the caller removes `new`; keep that uniform
        return
    if _exchange(new, target):
        return
    aside = new.with_name(new.name + ".old")
    target.rename(aside)
    new.rename(target)
    aside.rename(new)


def _exchange(a: Path, b: Path) -> bool:
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
        at_fdcwd = -100
        result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
        return bool(result == 0)
    return False
