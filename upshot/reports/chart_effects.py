"""Interval charts: estimates with their CIs (uplift, opt-out harm, experiments).

Each builder takes pre-aggregated rows (one per class or metric) and returns an Altair
chart; estimates that are None are left out rather than drawn at zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from upshot.reports.chart_style import (
    BAD,
    GOOD,
    NAIVE,
    UNCLEAR,
    VERDICT_COLORS,
    WIDTH,
    axis_format,
    values,
    verdict,
)


def uplift_panel(rows: Sequence[dict[str, Any]], meta: dict[str, Any]) -> Any:
    """One objective: each class's causal uplift per send with its CI (coloured by whether
    it helps, hurts or is unclear on this objective), the naive difference as a tick."""
    import altair as alt

    better = meta["higher_is_better"]
    data = [
        {**r, "verdict": verdict(r, better)}
        for r in values(
            [r for r in rows if r["effect"] is not None],
            (
                "message_class",
                "channel",
                "effect",
                "effect_ci_lower",
                "effect_ci_upper",
                "naive_effect",
                "significant",
                "n_treatment",
                "n_control",
            ),
        )
    ]
    fmt = axis_format(meta)
    base = alt.Chart(alt.Data(values=data)).encode(
        y=alt.Y("message_class:N", title=None, sort="ascending")
    )
    x = alt.X(
        "effect_ci_lower:Q",
        title=f"uplift per send ({meta['per_send']})",
        axis=alt.Axis(format=fmt, tickCount=6),
    )
    tooltip = [
        alt.Tooltip("message_class:N", title="class"),
        alt.Tooltip("effect:Q", title="causal uplift", format=fmt.replace(".2", ".3")),
        alt.Tooltip("effect_ci_lower:Q", title="CI lower", format=fmt.replace(".2", ".3")),
        alt.Tooltip("effect_ci_upper:Q", title="CI upper", format=fmt.replace(".2", ".3")),
        alt.Tooltip("naive_effect:Q", title="naive difference", format=fmt.replace(".2", ".3")),
        alt.Tooltip("n_treatment:Q", title="sent", format=","),
        alt.Tooltip("n_control:Q", title="held out", format=","),
    ]
    color = alt.Color(
        "verdict:N",
        scale=alt.Scale(domain=list(VERDICT_COLORS), range=list(VERDICT_COLORS.values())),
        legend=alt.Legend(title=None, orient="bottom"),
    )
    zero = alt.Chart().mark_rule(color="#d0d7de").encode(x=alt.datum(0))
    bars = base.mark_rule(strokeWidth=2.5).encode(
        x=x, x2="effect_ci_upper:Q", color=color, tooltip=tooltip
    )
    points = base.mark_point(filled=True, size=70).encode(
        x="effect:Q", color=color, tooltip=tooltip
    )
    naive = base.mark_tick(color=NAIVE, thickness=2, size=14).encode(
        x="naive_effect:Q", tooltip=tooltip
    )
    return alt.layer(zero, bars, points, naive).properties(
        width=WIDTH, height=max(60, 26 * len(data)), title=meta["label"]
    )


SUBTITLE = (
    "Dot and bar: causal estimate with its 95% CI, coloured when significant after correcting",
    "for every class and objective tested. Black tick: the naive sent − held-out difference.",
)


def uplift_chart(rows: Sequence[dict[str, Any]], objectives: Sequence[dict[str, Any]]) -> Any:
    import altair as alt

    panels = [
        uplift_panel([r for r in rows if r["objective"] == m["objective"]], m)
        for m in objectives
        if any(r["objective"] == m["objective"] and r["effect"] is not None for r in rows)
    ]
    rows_of_two = [alt.hconcat(*panels[i : i + 2], spacing=40) for i in range(0, len(panels), 2)]
    return alt.vconcat(*rows_of_two, spacing=28).properties(
        title=alt.Title(
            "Causal uplift per send, by class and objective",
            subtitle=list(SUBTITLE),
        )
    )


def optout_chart(rows: Sequence[dict[str, Any]], guardrail: float, objective: str) -> Any:
    """Opt-out uplift per send of each class with its CI, against the governance guardrail;
    red when significantly over it (the `optout_harm` critical alert), amber when only
    the point estimate is (its warning)."""
    import altair as alt

    data = []
    for r in rows:
        if r["objective"] != objective or r["effect"] is None:
            continue
        level = (  # the alert's decision (`significance.decide`), not the raw CI
            "over the guardrail"
            if r.get("over_guardrail")
            else "may exceed it"
            if r["effect"] > guardrail
            else "within it"
        )
        data.append(
            {
                **values([r], ("message_class", "effect", "effect_ci_lower", "effect_ci_upper"))[0],
                "level": level,
            }
        )
    colors = {"over the guardrail": BAD, "may exceed it": "#bf8700", "within it": UNCLEAR}
    color = alt.Color(
        "level:N",
        title=None,
        legend=alt.Legend(orient="bottom"),
        scale=alt.Scale(domain=list(colors), range=list(colors.values())),
    )
    base = alt.Chart(alt.Data(values=data)).encode(y=alt.Y("message_class:N", title=None))
    tooltip = [
        alt.Tooltip("message_class:N", title="class"),
        alt.Tooltip("effect:Q", title="opt-out uplift", format=".3%"),
        alt.Tooltip("effect_ci_lower:Q", title="CI lower", format=".3%"),
        alt.Tooltip("effect_ci_upper:Q", title="CI upper", format=".3%"),
    ]
    bars = base.mark_rule(strokeWidth=2.5).encode(
        x=alt.X(
            "effect_ci_lower:Q",
            title="opt-out probability added per send",
            axis=alt.Axis(format=".1%", tickCount=6),
        ),
        x2="effect_ci_upper:Q",
        color=color,
        tooltip=tooltip,
    )
    points = base.mark_point(filled=True, size=70).encode(
        x="effect:Q", color=color, tooltip=tooltip
    )
    line = alt.Chart().mark_rule(color=BAD, strokeDash=[5, 3]).encode(x=alt.datum(guardrail))
    zero = alt.Chart().mark_rule(color="#d0d7de").encode(x=alt.datum(0))
    return alt.layer(zero, line, bars, points).properties(
        width=2 * WIDTH,
        height=max(60, 26 * len(data)),
        title=alt.Title(
            "Opt-out uplift per send",
            subtitle=f"Red dashed line: the governance guardrail ({guardrail:.2%} per send).",
        ),
    )


def experiment_chart(rows: Sequence[dict[str, Any]], experiment: str) -> Any:
    """One experiment: relative effect of each arm on each metric with its CI."""
    import altair as alt

    shown = [r for r in rows if r.get("rel_effect") is not None]
    fields = (
        "metric",
        "arm",
        "role",
        "rel_effect",
        "rel_effect_ci_lower",
        "rel_effect_ci_upper",
        "pvalue_adj",
        "verdict",
        "significant",
    )
    data = [
        {
            **v,
            "label": f"{v['metric']} ({v['arm']})" if _arms(rows) > 1 else v["metric"],
            # from the full row: `higher_is_better` is not among the embedded fields
            "direction": _direction(r),
        }
        for r, v in zip(shown, values(shown, fields), strict=True)
    ]
    colors = {"better": GOOD, "worse": BAD, "no significant change": UNCLEAR}
    color = alt.Color(
        "direction:N",
        title=None,
        legend=alt.Legend(orient="bottom"),
        scale=alt.Scale(domain=list(colors), range=list(colors.values())),
    )
    base = alt.Chart(alt.Data(values=data)).encode(y=alt.Y("label:N", title=None))
    tooltip = [
        alt.Tooltip("label:N", title="metric"),
        alt.Tooltip("role:N"),
        alt.Tooltip("rel_effect:Q", title="relative effect", format="+.2%"),
        alt.Tooltip("rel_effect_ci_lower:Q", title="CI lower", format="+.2%"),
        alt.Tooltip("rel_effect_ci_upper:Q", title="CI upper", format="+.2%"),
        alt.Tooltip("pvalue_adj:Q", title="adjusted p", format=".4f"),
    ]
    bars = base.mark_rule(strokeWidth=2.5).encode(
        x=alt.X(
            "rel_effect_ci_lower:Q",
            title="relative effect (treatment / control − 1)",
            axis=alt.Axis(format="+.0%"),
        ),
        x2="rel_effect_ci_upper:Q",
        color=color,
        tooltip=tooltip,
    )
    points = base.mark_point(filled=True, size=70).encode(
        x="rel_effect:Q", color=color, tooltip=tooltip
    )
    zero = alt.Chart().mark_rule(color="#8c959f").encode(x=alt.datum(0))
    return alt.layer(zero, bars, points).properties(
        width=2 * WIDTH, height=max(60, 26 * len(data)), title=experiment
    )


def _arms(rows: Sequence[dict[str, Any]]) -> int:
    return len({r.get("arm") for r in rows})


def _direction(row: dict[str, Any]) -> str:
    """better / worse / no significant change, from the row's `significant` (the adjusted
    p-value the table shows: `significance.experiment_rows`), not from the raw CI."""
    sign = row.get("significant") or 0
    if not sign:
        return "no significant change"
    up = sign > 0
    better = (
        (row.get("role") != "deterioration")
        if "higher_is_better" not in row
        else row["higher_is_better"]
    )
    return "better" if up == better else "worse"


TOUCH_METHODS = ("first_touch", "last_touch", "linear", "time_decay", "markov", "shapley")


def touches_chart(rows: Sequence[dict[str, Any]]) -> Any:
    """Conversions credited to each channel by every touch method, with the causal
    incremental conversions (and their CI) in black beside them."""
    import altair as alt

    data = values(
        [r for r in rows if r.get("conversions") is not None],
        ("item", "method", "kind", "conversions", "ci_lower", "ci_upper"),
    )
    order = [m for m in (*TOUCH_METHODS, "causal") if any(d["method"] == m for d in data)]
    palette = ["#b6e3ff", "#80ccff", "#54aeff", "#218bff", "#0969da", "#0550ae"]
    colors = [*palette[: len(order) - 1], "#1f2328"] if "causal" in order else palette[: len(order)]
    y = alt.Y("item:N", title=None)
    offset = alt.YOffset("method:N", sort=order)
    tooltip = [
        alt.Tooltip("item:N", title="channel"),
        alt.Tooltip("method:N"),
        alt.Tooltip("conversions:Q", format=",.1f"),
        alt.Tooltip("ci_lower:Q", title="CI lower", format=",.1f"),
        alt.Tooltip("ci_upper:Q", title="CI upper", format=",.1f"),
    ]
    bars = (
        alt.Chart()
        .mark_bar(height=7)
        .encode(
            y=y,
            yOffset=offset,
            x=alt.X("conversions:Q", title="conversions credited this week"),
            color=alt.Color(
                "method:N",
                sort=order,
                scale=alt.Scale(domain=order, range=colors),
                legend=alt.Legend(orient="bottom", title=None),
            ),
            tooltip=tooltip,
        )
    )
    whiskers = (
        alt.Chart()
        .mark_rule(color=BAD, strokeWidth=1.5)
        .encode(y=y, yOffset=offset, x="ci_lower:Q", x2="ci_upper:Q", tooltip=tooltip)
        .transform_filter("datum.kind == 'causal' && isValid(datum.ci_lower)")
    )
    zero = alt.Chart().mark_rule(color="#8c959f").encode(x=alt.datum(0))
    channels = len({d["item"] for d in data})
    return alt.layer(bars, whiskers, zero, data=alt.Data(values=data)).properties(
        width=2 * WIDTH,
        height=max(80, channels * (8 * len(order) + 14)),
        title=alt.Title(
            "Touch-based credit beside causal incrementality, by channel",
            subtitle=[
                "Blue: conversions each rule credits to a channel, caused or not.",
                "Black: conversions its messages caused (uplift × sends); red: the CI.",
            ],
        ),
    )
