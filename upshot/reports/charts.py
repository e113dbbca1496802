"""The report's charts: which ones a week has data for, each as a Vega-Lite spec.

Builders (`chart_effects`, `chart_trends`) never see user-level data: their input is a
table of `ReportData` (one row per class, week, channel or day), and each chart carries
only the fields it draws, inline (`alt.Data(values=...)`). Altair is imported inside the
builders: the CLI imports these modules only when it builds a report.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from upshot.reports.chart_effects import (
    experiment_chart,
    optout_chart,
    touches_chart,
    uplift_chart,
)
from upshot.reports.chart_longterm import backtest_chart
from upshot.reports.chart_style import THEME
from upshot.reports.chart_trends import daily_chart, history_chart, reach_chart, weights_chart

if TYPE_CHECKING:
    from upshot.reports.data import ReportData


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart of the report: its file name (`name.png`, `name.svg`), section and title."""

    name: str
    section: str
    title: str
    spec: dict[str, Any]  # the Vega-Lite spec, data inline


def charts(data: ReportData, guardrail: float, optout_objective: str) -> list[Chart]:
    """Every chart the report has data for, in reading order."""
    out: list[tuple[str, str, str, Any]] = []
    if any(r["effect"] is not None for r in data.uplift):
        out.append(
            (
                "uplift",
                "uplift",
                "Causal uplift per class",
                uplift_chart(data.uplift, data.objectives),
            )
        )
    if any(r["effect"] is not None and r["objective"] == optout_objective for r in data.uplift):
        out.append(
            (
                "optout",
                "reach",
                "Opt-out uplift",
                optout_chart(data.uplift, guardrail, optout_objective),
            )
        )
    if any(r.get("conversions") is not None for r in data.touches):
        out.append(("touches", "uplift", "Touch credit and causal", touches_chart(data.touches)))
    if any(r["projected"] is not None for r in data.backtest):
        out.append(("backtest", "longterm", "Long-term backtest", backtest_chart(data.backtest)))
    if any(r["weight"] is not None for r in data.weights):
        out.append(("weights", "weights", "Value weights", weights_chart(data.weights)))
    if any(r["effect"] is not None and r["objective"] in _keys(data) for r in data.history):
        out.append(
            (
                "history",
                "history",
                "Uplift over past weeks",
                history_chart(data.history, data.objectives),
            )
        )
    if any(r.get("rate") is not None for r in data.reach):
        out.append(("reach", "reach", "Reachable users", reach_chart(data.reach)))
    for name in sorted({r["experiment_id"] for r in data.experiments}):
        rows = [r for r in data.experiments if r["experiment_id"] == name]
        if any(r.get("rel_effect") is not None for r in rows):
            out.append(
                (experiment_chart_name(name), "experiments", name, experiment_chart(rows, name))
            )
    if data.daily:
        out.append(("daily", "health", "Rows per day", daily_chart(data.daily)))
    return [Chart(n, s, t, c.configure(**THEME).to_dict()) for n, s, t, c in out]


def _keys(data: ReportData) -> set[str]:
    return {o["objective"] for o in data.objectives if o["key"]}


def experiment_chart_name(experiment_id: str) -> str:
    """The chart's file name and element id: `experiment-<slug>`, unique per experiment.

    The slug keeps lower-case ASCII letters, digits, `-` and `_` (safe in a file name on
    every file system and in an HTML id). When that loses anything (other characters,
    capitals, which collide on case-insensitive file systems, or length) a short hash of
    the exact id is appended, so `a/b` and `a?b` get different names, the same on every
    run. An id that already looks like `<slug>-<hash>` is hashed too, so that a plain name
    can never equal another experiment's hashed one."""
    plain = slug(experiment_id)
    if plain == experiment_id and not _HASHED.search(plain):
        return f"experiment-{plain}"
    digest = hashlib.sha256(experiment_id.encode("utf-8", "surrogatepass")).hexdigest()
    return f"experiment-{plain}-{digest[:_HASH_CHARS]}"


_HASH_CHARS = 10
_HASHED = re.compile(rf"-[0-9a-f]{{{_HASH_CHARS}}}$")


def slug(text: str) -> str:
    return "".join(c if c in _SLUG_CHARS else "-" for c in text.lower())[:60]


_SLUG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
