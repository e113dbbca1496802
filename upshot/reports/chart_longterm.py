"""The backtest chart: each class's projected long-term effect in a past window against
the effect later realized, with both CIs and the 45° line where they agree. A class the
backtest flags (surrogacy fails: its projection misses what happened) is drawn in red.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from upshot.reports.chart_style import BAD, UNCLEAR, WIDTH, values

FIELDS = ("outcome", "window", "message_class", "projected", "projected_ci_lower",
          "projected_ci_upper", "realized", "realized_ci_lower", "realized_ci_upper",
          "flagged", "missed")  # fmt: skip
SUBTITLE = (
    "Each point: one class in one past window, its projection (from its 7-day effects)",
    "against the effect realized later, with 95% CIs. Grey line: projected = realized.",
    "Red: a class the backtest flags (surrogacy fails for it).",
)


def backtest_panel(rows: Sequence[dict[str, Any]], outcome: str) -> Any:
    """One outcome's windows x classes; `rows` have numbers (None rows are left out)."""
    import altair as alt

    data = [
        {**r, "verdict": "flagged" if r["flagged"] else "holds"}
        for r in values([r for r in rows if r["projected"] is not None], FIELDS)
    ]
    ends = [v for r in data for v in (r["projected_ci_lower"], r["projected_ci_upper"],
                                      r["realized_ci_lower"], r["realized_ci_upper"])
            if v is not None]  # fmt: skip
    lo, hi = (min(ends), max(ends)) if ends else (0.0, 1.0)
    color = alt.Color(
        "verdict:N",
        scale=alt.Scale(domain=["holds", "flagged"], range=[UNCLEAR, BAD]),
        legend=alt.Legend(title=None, orient="bottom"),
    )
    tooltip = [
        alt.Tooltip("message_class:N", title="class"),
        alt.Tooltip("window:N", title="window"),
        alt.Tooltip("projected:Q", title="projected", format=",.3f"),
        alt.Tooltip("realized:Q", title="realized", format=",.3f"),
        alt.Tooltip("missed:N", title="missed"),
    ]
    base = alt.Chart(alt.Data(values=data))
    scale = alt.Scale(domain=[lo, hi], nice=True)
    diagonal = (
        alt.Chart(alt.Data(values=[{"v": lo}, {"v": hi}]))
        .mark_line(color="#d0d7de", strokeDash=[4, 3])
        .encode(x=alt.X("v:Q", scale=scale), y=alt.Y("v:Q", scale=scale))
    )
    x = alt.X("projected:Q", title=f"projected {outcome}", scale=scale)
    y = alt.Y("realized:Q", title=f"realized {outcome}", scale=scale)
    across = base.mark_rule(strokeWidth=1.5).encode(
        x=alt.X("projected_ci_lower:Q", scale=scale), x2="projected_ci_upper:Q", y=y,
        color=color, tooltip=tooltip,
    )  # fmt: skip
    down = base.mark_rule(strokeWidth=1.5).encode(
        x=x, y=alt.Y("realized_ci_lower:Q", scale=scale), y2="realized_ci_upper:Q",
        color=color, tooltip=tooltip,
    )  # fmt: skip
    points = base.mark_point(filled=True, size=60).encode(x=x, y=y, color=color, tooltip=tooltip)
    return alt.layer(diagonal, across, down, points).properties(
        width=WIDTH, height=WIDTH, title=outcome
    )


def backtest_chart(rows: Sequence[dict[str, Any]]) -> Any:
    import altair as alt

    outcomes = sorted({r["outcome"] for r in rows if r["projected"] is not None})
    panels = [backtest_panel([r for r in rows if r["outcome"] == o], o) for o in outcomes]
    return alt.hconcat(*panels, spacing=40).properties(
        title=alt.Title("Backtest: projected against realized long-term effects",
                        subtitle=list(SUBTITLE))
    )  # fmt: skip
