"""The report's long-term section: projected long-term effects beside the 7-day ones,
the backtest status of each class, and the backtest chart (see `longterm_view`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from upshot.reports import fmt
from upshot.reports.html_kit import card, chart_div, e, table

if TYPE_CHECKING:
    from upshot.config import Config
    from upshot.reports.charts import Chart
    from upshot.reports.data import ReportData

STATUS = {
    "ok": "holds",
    "surrogacy_violated": "FLAGGED: surrogacy fails",
    "not_backtested": "not backtested",
}


def longterm_section(data: ReportData, charts: dict[str, Chart], config: Config) -> str:
    if not data.longterm:
        return card(
            "longterm",
            "Long-term effects",
            "",
            '<p class="empty">No long-term projection for this week (see the longterm '
            "stage; it needs <code>[longterm]</code> outcomes and history old enough).</p>",
        )
    binary = {n: o.binary for n, o in config.longterm.outcomes.items()}
    columns = [
        ("message_class", "<class"),
        ("outcome", "<long-term outcome"),
        ("estimate", "projected (95% CI)"),
        ("short_effect", "7-day effect (95% CI)"),
        ("backtest", "<backtest"),
    ]

    def cell(key: str, row: dict[str, Any]) -> str | None:
        if key in ("message_class", "outcome"):
            return None
        if row["suppressed"] and key in ("estimate", "short_effect"):
            return '<span class="sub">suppressed (&lt;k users)</span>'
        if key == "backtest":
            label = STATUS.get(row["backtest"], row["backtest"])
            if row["backtest"] == "surrogacy_violated":
                return f'<span class="badge critical">{e(label)}</span>'
            return e(label)
        if key == "estimate":
            if row["estimate"] is None:
                return f'<span class="sub">{e(row["status"])}</span>'
            one = lambda v: fmt.per_send(v, binary.get(row["outcome"], False))  # noqa: E731
            ci = fmt.interval(row["ci_lower"], row["ci_upper"], one)
            return f'{e(one(row["estimate"]))}<span class="sub">{e(ci)}</span>'
        name = row["short_objective"] or "?"
        if row["short_effect"] is None:
            return f'<span class="sub">{e(name)}: n/a</span>'
        meta = next((o for o in data.objectives if o["objective"] == name), None)
        one = lambda v: fmt.per_send(v, bool(meta and meta["binary"]))  # noqa: E731
        ci = fmt.interval(row["short_ci_lower"], row["short_ci_upper"], one)
        return f'{e(name)} {e(one(row["short_effect"]))}<span class="sub">{e(ci)}</span>'

    flagged = sorted({(r["message_class"], r["outcome"]) for r in data.backtest if r["flagged"]})
    note = ""
    if flagged:
        names = ", ".join(f"{c} ({o})" for c, o in flagged)
        note = (
            f'<p class="meta"><strong>The backtest flags {e(names)}</strong>: in past windows '
            "its projection missed the long-term effect later realized, beyond its CI: its "
            "7-day effects do not carry its long-term effect, so its projection is not to be "
            "trusted.</p>"
        )
    body = (
        note
        + _hidden(data)
        + table(columns, data.longterm, cell)
        + "<h3>Backtest</h3>"
        + '<p class="meta">Past windows whose long-term outcome is now observed: each '
        "class projected with the outcome hidden (h learned on the other classes), against "
        "the effect realized.</p>"
        + (chart_div(charts, "backtest") or '<p class="empty">No backtest rows.</p>')
    )
    return card(
        "longterm",
        "Long-term effects",
        "Each class's effect on the long-term outcomes, projected from its 7-day effects with "
        "the surrogate index (CIs include the error of the projection model), beside the "
        "7-day effect it is projected from, and whether the backtest says the projection "
        "holds for that class.",
        body,
    )


def _hidden(data: ReportData) -> str:
    n = data.suppressed_by.get("longterm", 0)
    if not n:
        return ""
    cells = "cell" if n == 1 else "cells"
    return (
        f'<p class="meta suppressed">{n} {cells} hidden: a class or backtest window with '
        f"fewer than {data.k} users (report.k_anonymity).</p>"
    )
