"""`summary.md`: the week in a few lines of Markdown, for e-mail and chat.

Alerts first, then the headline with CIs, the classes that moved, the largest weight
changes, the experiments' verdicts and one line of data health. Plain GitHub-flavoured
Markdown (tables, bold), no images and no links outside the report folder.
"""

from __future__ import annotations

import re
from html import escape
from typing import TYPE_CHECKING, Any

from upshot import period
from upshot.reports import fmt

if TYPE_CHECKING:
    from upshot.reports.alerts import Alerts
    from upshot.reports.data import ReportData

MAX_ALERTS = 10
MAX_ROWS = 5


def _md(text: Any) -> str:
    """A name or message as literal text within one line (or table cell) of Markdown.

    `<`, `>` and `&` become HTML entities (no tag, comment or entity from a name reaches
    a renderer); line breaks become spaces (a name cannot start a line, heading, list
    item or table row); the characters that open markup or split a cell get a backslash;
    and so does a leading `- `, `+ ` or `1. `, which would open a list inside a list item.
    """
    out = "".join(f"\\{c}" if c in _MD_SPECIAL else c for c in str(text))
    out = " ".join(escape(out, quote=False).splitlines())
    return _MD_LIST_START.sub(r"\1\\\2", out)


_MD_SPECIAL = frozenset("\\`*_[]|~#")
_MD_LIST_START = re.compile(r"^(\s*(?:\d{1,9})?)([-+.)])(?=\s|$)")


def alerts_block(alerts: Alerts) -> list[str]:
    counts = alerts.counts()
    if not len(alerts):
        return ["**Alerts:** none."]
    head = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    lines = [f"**Alerts:** {head}", ""]
    lines += [f"- **{a.severity.upper()}** {_md(a.message)}" for a in list(alerts)[:MAX_ALERTS]]
    if len(alerts) > MAX_ALERTS:
        lines.append(f"- … and {len(alerts) - MAX_ALERTS} more in alerts.json")
    return lines


def headline_block(data: ReportData) -> list[str]:
    lines = ["| this week | effect | 95% CI |", "|---|---:|---:|"]
    for h in data.headline:
        note = "" if h["status"] == "ok" else f" ({h['classes_estimated']}/{h['classes']} classes)"
        ci = fmt.interval(h["effect_ci_lower"], h["effect_ci_upper"], fmt.total)
        lines.append(f"| {_md(h['label'])}{note} | {fmt.total(h['effect'])} | {ci} |")
    return lines


def movers_block(data: ReportData) -> list[str]:
    """Classes whose uplift on a key objective is significant, largest first."""
    lines = []
    for meta in data.objectives:
        if not meta["key"]:
            continue
        rows = [r for r in data.uplift if r["objective"] == meta["objective"] and r["significant"]]
        rows.sort(key=lambda r: -abs(r["effect"] or 0))
        for r in rows[:MAX_ROWS]:
            one = lambda v, b=meta["binary"]: fmt.per_send(v, b)  # noqa: E731
            objective = _md(meta["objective"])
            lines.append(
                f"- {_md(r['message_class'])} on {objective}: {one(r['effect'])} per send "
                f"{fmt.interval(r['effect_ci_lower'], r['effect_ci_upper'], one)}"
            )
    return lines or ["- no class moved a key objective significantly this week"]


def weights_block(data: ReportData) -> list[str]:
    if data.weights_info.get("status") != "ok":
        return ["No weights were published for this week."]
    rows = sorted(
        (r for r in data.weights if r["weight"] is not None),
        key=lambda r: -abs(r["change"] or 0),
    )[:MAX_ROWS]
    lines = ["| class | weight | last week | change |", "|---|---:|---:|---:|"]
    for r in rows:
        change = "new" if r.get("new") else fmt.weight(r["change"], signed=True)
        lines.append(
            f"| {_md(r['message_class'])} | {fmt.weight(r['weight'])} | "
            f"{fmt.weight(r['previous_weight'])} | {change} |"
        )
    return lines


def experiments_block(data: ReportData) -> list[str]:
    names = sorted({r["experiment_id"] for r in data.experiments})
    lines = []
    for name in names:
        rows = [r for r in data.experiments if r["experiment_id"] == name and "metric" in r]
        verdicts = sorted({str(r["verdict"]) for r in rows if r.get("verdict")})
        verdict = ", ".join(v.replace("_", " ") for v in verdicts) or "analysed, no verdict"
        if not rows:
            verdict = "no results stored"
        moved = [
            f"{r['metric']} {fmt.percent(r['rel_effect'], 1, signed=True)}"
            for r in rows
            if r.get("significant") and r.get("rel_effect") is not None
        ]
        detail = f" ({_md(', '.join(moved))})" if moved else ""
        lines.append(f"- {_md(name)}: **{verdict}**{detail}")
    return lines or ["- no experiment was live this week"]


def health_line(data: ReportData) -> str:
    days = sum(1 for d in data.daily if d["sends"] != 0 and d["outcomes"] != 0)
    files = sum(r["files"] for r in data.loads)
    quarantined = sum(r["rows_quarantined"] or 0 for r in data.loads)
    failed = [s["stage"] for s in data.stages if s.get("status") == "failed"]
    parts = [
        f"{days} of {len(data.daily)} days with sends and outcomes",
        f"{files} files behind the week",
        f"{quarantined:,} rows quarantined",
    ]
    if failed:
        parts.append(f"failed stages: {', '.join(failed)}")
    if data.suppressed:
        parts.append(
            f"{data.suppressed} cells hidden (fewer than {data.k} users; report.k_anonymity)"
        )
    return "; ".join(parts) + "."


def markdown(data: ReportData, alerts: Alerts) -> str:
    """The whole `summary.md`."""
    lines = [
        f"# upshot weekly report: {period.label(data.week)}",
        "",
        *alerts_block(alerts),
        "",
        "## Headline",
        "",
        "What messaging caused this week (causal uplift × sends, summed over classes):",
        "",
        *headline_block(data),
        "",
        "## Classes that moved a key objective",
        "",
        *movers_block(data),
        "",
        "## Value weights: largest changes",
        "",
        *weights_block(data),
        "",
        "## Experiments live this week",
        "",
        *experiments_block(data),
        "",
        "## Data health",
        "",
        health_line(data),
        "",
        "Full report: `index.html` in this folder (opens offline); charts in `charts/`.",
        "",
    ]
    return "\n".join(lines)
