"""The experiments section of the HTML report: verdicts, effects and decompositions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from upshot.reports import fmt
from upshot.reports.charts import experiment_chart_name
from upshot.reports.html_kit import card, chart_div, e, table
from upshot.reports.html_sections import hidden_note

if TYPE_CHECKING:
    from upshot.reports.charts import Chart
    from upshot.reports.data import ReportData


def experiments_section(data: ReportData, charts: dict[str, Chart]) -> str:
    names = sorted({r["experiment_id"] for r in data.experiments})
    if not names:
        return card(
            "experiments",
            "Experiments live this week",
            "",
            '<p class="empty">No experiment was live this week.</p>',
        )
    parts = []
    for name in names:
        rows = [r for r in data.experiments if r["experiment_id"] == name]
        mine = [p for p in data.decompositions if p["experiment_id"] == name]
        parts.append(_experiment(name, rows, mine, charts))
    return card(
        "experiments",
        "Experiments live this week",
        "Each arm against control on every configured metric: relative effect with its 95% CI; "
        "p-values adjusted for multiple comparisons. Verdicts follow the ship/no-ship rule.",
        hidden_note(data, "experiments", "a result, arm or segment with") + "".join(parts),
    )


def _experiment(
    name: str, rows: list[dict[str, Any]], parts: list[dict[str, Any]], charts: dict[str, Chart]
) -> str:
    results = [r for r in rows if "metric" in r]
    if not results:
        return (
            f'<div class="experiment"><h3>{e(name)}</h3><p class="empty">'
            "No results stored for this experiment.</p></div>"
        )
    verdicts = sorted({str(r.get("verdict")) for r in results if r.get("verdict")})
    badges = "".join(
        f' <span class="badge {e(v)}">{e(v.replace("_", " "))}</span>' for v in verdicts
    )
    srm = results[0].get("srm_status") or "n/a"
    arms = sorted({(r["arm"], r.get("n_treatment")) for r in results})
    control = results[0].get("control_arm")
    n_control = results[0].get("n_control")
    sizes = ", ".join(f"{a}: {fmt.count(n)}" for a, n in [(control, n_control), *arms])
    columns = [
        ("metric", "<metric"),
        ("arm", "<arm"),
        ("role", "<role"),
        ("rel_effect", "relative effect"),
        ("pvalue_adj", "adjusted p"),
        ("reason", "<verdict reason"),
    ]

    def cell(key: str, row: dict[str, Any]) -> str | None:
        if key == "rel_effect":
            ci = fmt.interval(
                row.get("rel_effect_ci_lower"),
                row.get("rel_effect_ci_upper"),
                lambda v: fmt.percent(v, 2, signed=True),
            )
            effect = fmt.percent(row.get("rel_effect"), 2, signed=True)
            return f'{e(effect)}<span class="sub">{e(ci)}</span>'
        if key == "pvalue_adj":
            return e(fmt.pvalue(row.get("pvalue_adj")))
        if key == "reason":
            return e(row.get("reason") or row.get("status") or "")
        return None

    decomposition = _decomposition(parts)
    return (
        f'<div class="experiment"><h3>{e(name)}{badges}</h3>'
        f'<p class="meta">users per arm: {e(sizes)} · SRM check: {e(srm)}</p>'
        f"{chart_div(charts, experiment_chart_name(name))}{table(columns, results, cell)}"
        f"{decomposition}</div>"
    )


def _decomposition(parts: list[dict[str, Any]]) -> str:
    """The funnel and mix/rate tables of one experiment (one per kind and arm)."""
    titles = {
        "funnel": "Funnel: which step moved (relative effects)",
        "mix": "Mix or rate: did the arm get different users, or did users behave differently",
    }
    out = []
    for kind in ("funnel", "mix"):
        for arm in sorted({str(p["arm"]) for p in parts if p["kind"] == kind}):
            rows = [p for p in parts if p["kind"] == kind and str(p["arm"]) == arm]
            broken = [r for r in rows if "label" not in r]
            if broken:
                reason = broken[0]["status"]
                out.append(f'<p class="meta">{e(titles[kind])} ({e(arm)}): {e(reason)}</p>')
                continue
            note = next((str(r["note"]) for r in rows if r.get("note")), "")
            out.append(
                f"<details open><summary>{e(titles[kind])}: {e(arm)} vs control</summary>"
                + (f'<p class="meta">{e(note)}</p>' if note else "")
                + f"{_parts_table(kind, rows)}</details>"
            )
    return "".join(out)


def _parts_table(kind: str, rows: list[dict[str, Any]]) -> str:
    relative = lambda v: fmt.percent(v, 2, signed=True)  # noqa: E731
    absolute = lambda v: fmt.weight(v, signed=True)  # noqa: E731

    def with_ci(row: dict[str, Any], key: str, lower: str, upper: str) -> str:
        one = relative if row.get("relative") else absolute
        ci = fmt.interval(row.get(lower), row.get(upper), one)
        sub = f'<span class="sub">{e(ci)}</span>' if ci != fmt.MISSING else ""
        return f"{e(one(row.get(key)))}{sub}"

    def cell(key: str, row: dict[str, Any]) -> str | None:
        if key == "label":
            return None
        if row.get("suppressed"):
            return '<span class="sub">suppressed</span>' if key == "effect" else ""
        if key == "effect":
            return with_ci(row, "effect", "ci_lower", "ci_upper")
        if key in ("mix", "rate"):
            return with_ci(row, key, f"{key}_ci_lower", f"{key}_ci_upper")
        return e(fmt.percent(row.get("share")))

    if kind == "funnel":
        columns = [("label", "<part"), ("effect", "effect"), ("share", "share of the total")]
    else:
        columns = [
            ("label", "<segment"),
            ("effect", "effect"),
            ("mix", "mix"),
            ("rate", "rate"),
            ("share", "share of the total"),
        ]
    return table(columns, rows, cell)
