"""The sections of the HTML report, each a function of the report data (and its charts)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from upshot import period
from upshot.reports import fmt, health
from upshot.reports.html_kit import card, chart_div, e, table

if TYPE_CHECKING:
    from upshot.config import Config
    from upshot.reports.alerts import Alerts
    from upshot.reports.charts import Chart
    from upshot.reports.data import ReportData

SECTIONS = (
    ("alerts", "Alerts"),
    ("headline", "Headline"),
    ("uplift", "Uplift by class"),
    ("longterm", "Long-term"),
    ("weights", "Value weights"),
    ("history", "Past weeks"),
    ("reach", "Reachability"),
    ("experiments", "Experiments"),
    ("health", "Data health"),
)


def hidden_note(data: ReportData, section: str, why: str) -> str:
    """The visible note of a section where k-anonymity hid cells: how many, and why."""
    n = data.suppressed_by.get(section, 0)
    if not n:
        return ""
    cells = "cell" if n == 1 else "cells"
    return (
        f'<p class="meta suppressed">{n} {cells} hidden: {e(why)} fewer than {data.k} users '
        "(report.k_anonymity); their numbers are left out of the charts and totals.</p>"
    )


def header(data: ReportData, alerts: Alerts) -> str:
    label = period.label(data.week)
    week, dates = label.split(" ", 1)
    counts = alerts.counts()
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no alerts"
    weights = "new weights published" if data.weights_info.get("status") == "ok" else "no weights"
    toc = "".join(f'<a href="#{a}">{e(t)}</a>' for a, t in SECTIONS)
    return (
        '<header class="top"><div class="eyebrow">upshot · weekly attribution report</div>'
        f'<h1>Week {e(week)} <span class="dates">{e(dates.strip("()"))}</span></h1>'
        f'<p class="meta">Decisions made {e(dates.strip("()"))} (UTC) · {e(summary)} · '
        f"{e(weights)} · cells under {data.k} users suppressed: {data.suppressed}</p>"
        f'</header><nav class="toc">{toc}</nav>'
    )


def alerts_section(alerts: Alerts) -> str:
    if not len(alerts):
        body = '<div class="allclear">No alerts this week.</div>'
    else:
        items = "".join(
            f'<li class="{e(a.severity)}">'
            f'<span class="badge {e(a.severity)}">{e(a.severity)}</span>'
            f'<span>{e(a.message)} <span class="rule">{e(a.rule)}</span></span></li>'
            for a in alerts
        )
        body = f'<ul class="alerts">{items}</ul>'
    return card(
        "alerts",
        "Alerts",
        "Critical alerts make <code>upshot run</code> exit non-zero (see <code>--fail-on</code>); "
        "they are also in <code>alerts.json</code>.",
        body,
    )


def headline_section(data: ReportData) -> str:
    cards = []
    for h in data.headline:
        meta = data.objective(h["objective"])
        value = h["effect"]
        sign = h.get("significant") or 0  # decided with the classes: significance.decide
        tone = "" if not sign else " good" if (sign > 0) == meta["higher_is_better"] else " bad"
        note = (
            f"{h['classes_estimated']} of {h['classes']} classes estimated"
            if h["status"] != "ok"
            else f"all {h['classes']} classes"
        )
        ci = fmt.interval(h["effect_ci_lower"], h["effect_ci_upper"], fmt.total)
        cards.append(
            f'<div class="kpi"><div class="label">{e(h["label"])}</div>'
            f'<div class="value{tone}">{e(fmt.total(value))}</div>'
            f'<div class="ci">95% CI {e(ci)}'
            f' {e(h["unit"])}</div><div class="note">{e(note)}</div></div>'
        )
    return card(
        "headline",
        "This week's headline",
        "What messaging caused this week beyond what would have happened without it: each "
        "class's causal uplift per send × its sends this week, summed over classes. A total "
        "is green or red only when significant in the same corrected family as the classes "
        "and the alerts (report.correction).",
        f'<div class="cards">{"".join(cards)}</div>',
    )


def uplift_section(data: ReportData, charts: dict[str, Chart]) -> str:
    classes = sorted({r["message_class"] for r in data.uplift})
    by = {(r["message_class"], r["objective"]): r for r in data.uplift}
    columns = [("message_class", "<class"), ("channel", "<channel"), ("sends", "sends")]
    columns += [(o["objective"], o["objective"]) for o in data.objectives]
    rows = []
    for cls in classes:
        first = next(r for r in data.uplift if r["message_class"] == cls)
        rows.append({"message_class": cls, "channel": first["channel"], "sends": first["sends"]})

    def cell(key: str, row: dict[str, Any]) -> str | None:
        if key == "sends":
            return e(fmt.count(row["sends"]))
        if key in ("message_class", "channel"):
            return None
        r = by.get((row["message_class"], key))
        if r is None:
            return "—"
        if r["suppressed"]:
            return '<span class="sub">suppressed (&lt;k users)</span>'
        if r["effect"] is None:
            return f'<span class="sub">{e(r["status"])}</span>'
        binary = data.objective(key)["binary"]
        one = lambda v: fmt.per_send(v, binary)  # noqa: E731
        ci = fmt.interval(r["effect_ci_lower"], r["effect_ci_upper"], one)
        return (
            f'{e(one(r["effect"]))}<span class="sub">{e(ci)}</span>'
            f'<span class="sub">naive {e(one(r["naive_effect"]))}</span>'
        )

    body = (
        hidden_note(data, "uplift", "a class whose sent or held-out group had")
        + chart_div(charts, "uplift")
        + table(columns, rows, cell)
    )
    if "touches" in charts or data.suppressed_by.get("touches"):
        body += (
            "<h3>Touch-based credit beside causal incrementality</h3>"
            '<p class="meta">From the week\'s <code>upshot touches</code> run: rule-based and '
            "data-driven credit for the conversions a channel touched, next to the conversions "
            "its messages caused.</p>"
            + hidden_note(data, "touches", "a channel messaged to")
            + chart_div(charts, "touches")
        )
    if not data.uplift:
        body = '<p class="empty">No uplift estimates for this week.</p>'
    return card(
        "uplift",
        "Uplift per class and objective",
        "The effect of sending one message of a class instead of holding it back, per send, "
        "with its 95% CI, next to the naive sent-minus-held-out difference. The naive number "
        "is biased wherever sends are targeted at users who would have done well anyway.",
        body,
    )


def weights_section(data: ReportData, charts: dict[str, Chart]) -> str:
    info = data.weights_info
    if info.get("status") != "ok":
        return card(
            "weights",
            "Value weights",
            "",
            '<p class="empty">No weights were published for this week.</p>',
        )
    rows = sorted(data.weights, key=lambda r: -abs(r["change"] or 0))
    columns = [
        ("message_class", "<class"),
        ("channel", "<channel"),
        ("weight", "weight"),
        ("previous_weight", "last week"),
        ("change", "change"),
        ("status", "<status"),
    ]

    def cell(key: str, row: dict[str, Any]) -> str | None:
        if key in ("weight", "previous_weight"):
            return e(fmt.weight(row[key]))
        if key == "change":
            return e("new" if row.get("new") else fmt.weight(row[key], signed=True))
        if key == "status":
            reason = f'<span class="sub">{e(row["reason"])}</span>' if row.get("reason") else ""
            return f"{e(row['status'])}{reason}"
        return None

    compared = (
        "next to the previous week's"
        if info.get("previous_version")
        else "(no earlier version to compare with)"
    )
    lede = (
        f"The weights published for this week {compared}, in value units per send under "
        f"governance policy {e(info.get('policy_version'))}. A class with weight ≤ 0 should "
        "not be sent for its value. Sorted by the size of the change."
    )
    if not any((r["weight"] or 0) > 0 for r in data.weights):
        lede += (
            " <strong>No class has a positive weight this week</strong>: the status column "
            "says why (too few decisions, a guardrail)."
        )
    return card(
        "weights", "Value weights", lede, chart_div(charts, "weights") + table(columns, rows, cell)
    )


def history_section(data: ReportData, charts: dict[str, Chart]) -> str:
    shown = sorted({r["week"] for r in data.history})
    lede = (
        f"Each class's causal uplift per send on the key objectives, {len(shown)} week(s): "
        f"{e(shown[0])} to {e(shown[-1])}."
        if shown
        else ""
    )
    body = chart_div(charts, "history") or '<p class="empty">No estimates of earlier weeks yet.</p>'
    body = (
        hidden_note(data, "history", "a class in an earlier week whose sent or held-out group had")
        + body
    )
    return card("history", "Uplift over past weeks", lede, body)


def reach_section(data: ReportData, charts: dict[str, Chart], config: Config) -> str:
    rows = [r for r in data.reach if r["week"] == data.week]
    columns = [
        ("channel", "<channel"),
        ("users", "users"),
        ("opted_in_start", "opted in at start"),
        ("reachable", "reachable now"),
        ("rate", "rate"),
        ("exits", "opted out this week"),
    ]

    def cell(key: str, row: dict[str, Any]) -> str | None:
        if key == "rate":
            return e(fmt.percent(row.get("rate")))
        if key in ("users", "opted_in_start", "reachable", "exits"):
            if row.get(key) is None and row.get("suppressed"):
                return e(f"< {data.k}")
            return e(fmt.count(row.get(key)))
        return None

    missing = [r["channel"] for r in rows if r.get("status") == "no_opt_in_column"]
    note = (
        f'<p class="empty">No opt-in column for: {e(", ".join(missing))} '
        "(see report.reach_opt_in).</p>"
        if missing
        else ""
    )
    guard = config.governance.max_optout_harm
    return card(
        "reach",
        "Reachability",
        "Who can still be messaged on each channel, and how much each class adds to opt-outs "
        f"per send, against the governance guardrail of {guard:.2%}.",
        hidden_note(data, "reach", "a channel count (users, or this week's opt-outs) about")
        + chart_div(charts, "reach")
        + table(columns, [r for r in rows if "users" in r], cell)
        + note
        + chart_div(charts, "optout"),
    )


def health_section(data: ReportData, charts: dict[str, Chart]) -> str:
    parts = []
    # the loading and the timings belong to a run, not to the week: a rerun of the same
    # week on the same data must give the same report, so only the estimation stages show
    stages = [s for s in data.stages if s.get("stage") not in ("load", "report")]
    if stages:
        columns = [("stage", "<stage"), ("status", "<status"), ("note", "<note")]

        def stage_cell(key: str, row: dict[str, Any]) -> str | None:
            if key == "status":
                return f'<span class="badge {e(row["status"])}">{e(row["status"])}</span>'
            if key == "note":
                failures = row.get("failures") or ()
                if failures:
                    return e("; ".join(f"{f['subject']}: {f['status']}" for f in failures))
                return e(row.get("detail", "")) if row["status"] != "ok" else ""
            return None

        parts.append("<h3>Weekly job</h3>" + table(columns, stages, stage_cell))
    found = health.findings(data.stages)
    if found:
        check_cols = [("name", "<check"), ("status", "<status"), ("detail", "<finding")]

        def check_cell(key: str, row: dict[str, Any]) -> str | None:
            if key == "status":
                return f'<span class="badge {e(row["status"])}">{e(row["status"])}</span>'
            return None

        parts.append("<h3>Data checks (upshot check)</h3>" + table(check_cols, found, check_cell))
    parts.append(
        "<h3>Rows per day</h3>"
        + hidden_note(data, "daily", "a day's sends or outcomes from")
        + chart_div(charts, "daily")
    )
    load_cols = [
        ("table", "<table"),
        ("files", "files"),
        ("rows_accepted", "rows loaded"),
        ("duplicates_skipped", "duplicates skipped"),
        ("rows_quarantined", "quarantined"),
    ]
    counted = lambda k, r: None if k == "table" else e(fmt.count(r.get(k)))  # noqa: E731
    parts.append("<h3>Files behind this week</h3>" + table(load_cols, data.loads, counted))
    if data.over_gate:
        parts.append(
            '<p class="meta">Files whose quarantined share was over load.max_reject_rate: '
            f"{e(', '.join(r['source'] for r in data.over_gate))}</p>"
        )
    if data.quarantine:
        q_cols = [("table", "<table"), ("reason", "<reason"), ("rows", "rows")]
        parts.append("<h3>Quarantined rows</h3>" + table(q_cols, data.quarantine, counted))
    refuted = sorted({r["message_class"] for r in data.uplift if r["refute_passed"] is False})
    checked = sum(1 for r in data.uplift if r["refute_passed"] is not None)
    parts.append(
        "<h3>Checks</h3><ul>"
        f"<li>Refutation: {checked} estimates checked; failed: "
        f"{e(', '.join(refuted) or 'none')}.</li>"
        f"<li>Sample ratio: {e(_srm_line(data))}</li>"
        f"<li>Late data: {e(_late_line(data))}</li>"
        f"<li>Outcome windows: {e(_coverage_line(data))}</li></ul>"
    )
    return card(
        "health", "Data health", "Loads, quarantine, gaps, SRM and refutation.", "".join(parts)
    )


def _srm_line(data: ReportData) -> str:
    status = {r["experiment_id"]: r.get("srm_status") for r in data.experiments}
    if not status:
        return "no experiment live."
    return "; ".join(f"{k}: {v or 'n/a'}" for k, v in sorted(status.items())) + "."


def _late_line(data: ReportData) -> str:
    if not data.late:
        return "none arrived for weeks already reported."
    return "; ".join(f"{r['week']}: {r['late_rows']:,} rows" for r in data.late) + "."


def _coverage_line(data: ReportData) -> str:
    c = data.coverage
    if c.get("windows_complete"):
        return f"complete (outcomes through {c.get('last_outcome')})."
    return (
        f"incomplete: outcomes through {c.get('last_outcome')}, "
        f"windows end {c.get('windows_complete_at')}."
    )


def footer(data: ReportData) -> str:
    return (
        "<footer>"
        "<p>Weeks run Monday to Monday in UTC. Uplift is per decision in the objective's own "
        "units; CIs are 95%. Weekly totals treat classes as independent estimates. No chart "
        "or table holds a row per user; cells about fewer than "
        f"{data.k} users are suppressed.</p>"
        "<p>The runs and the weights version behind these numbers are listed in "
        "<code>provenance.json</code> beside this file; configuration "
        f"{e(str(data.sources.get('config_hash', ''))[:12])}.</p></footer>"
    )
