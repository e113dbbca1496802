"""Trend and level charts: uplift over past weeks, weights, reachability, rows per day.

Each builder takes pre-aggregated rows (one per class, channel, week or day) and
returns an Altair chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from upshot.reports.chart_style import BAD, NAIVE, WIDTH, axis_format, values


def history_chart(rows: Sequence[dict[str, Any]], objectives: Sequence[dict[str, Any]]) -> Any:
    """Each class's uplift per send over past weeks on the key objectives: one small panel
    per class (shared scale, so classes compare), the CI as a band."""
    import altair as alt

    panels = []
    for meta in objectives:
        if not meta["key"]:
            continue
        data = values(
            [r for r in rows if r["objective"] == meta["objective"] and r["effect"] is not None],
            ("week", "message_class", "effect", "effect_ci_lower", "effect_ci_upper"),
        )
        if not data:
            continue
        fmt = axis_format(meta)
        x = alt.X(
            "week:O", title=None, axis=alt.Axis(labelAngle=0, labelExpr="substring(datum.value, 5)")
        )
        band = (
            alt.Chart()
            .mark_area(opacity=0.18, color="#0969da")
            .encode(
                x=x,
                y=alt.Y(
                    "effect_ci_lower:Q",
                    title=None,
                    axis=alt.Axis(format=fmt, tickCount=4),
                ),
                y2="effect_ci_upper:Q",
            )
        )
        line = (
            alt.Chart()
            .mark_line(point=True, color="#0969da")
            .encode(
                x=x,
                y="effect:Q",
                tooltip=[
                    alt.Tooltip("week:O"),
                    alt.Tooltip("message_class:N", title="class"),
                    alt.Tooltip("effect:Q", title="uplift", format=fmt.replace(".2", ".3")),
                    alt.Tooltip(
                        "effect_ci_lower:Q", title="CI lower", format=fmt.replace(".2", ".3")
                    ),
                    alt.Tooltip(
                        "effect_ci_upper:Q", title="CI upper", format=fmt.replace(".2", ".3")
                    ),
                ],
            )
        )
        zero = alt.Chart().mark_rule(color="#8c959f").encode(y=alt.datum(0))
        panels.append(
            alt.layer(band, zero, line, data=alt.Data(values=data))
            .properties(width=190, height=110)
            .facet(
                facet=alt.Facet(
                    "message_class:N", title=None, header=alt.Header(labelFontWeight=600)
                ),
                columns=4,
                spacing=16,
            )
            .properties(title=f"{meta['label']}: uplift per send ({meta['per_send']})")
        )
    return alt.vconcat(*panels, spacing=30).properties(
        title=alt.Title(
            "Uplift per send over the past weeks, by class",
            subtitle="Line: weekly causal estimate; shaded band: its 95% CI; grey line: zero.",
        )
    )


def weights_chart(rows: Sequence[dict[str, Any]]) -> Any:
    """This week's weight per class (bars, by channel) with last week's as a black tick."""
    import altair as alt

    data = values(
        [r for r in rows if r["weight"] is not None],
        ("message_class", "channel", "weight", "previous_weight", "change", "status"),
    )
    order = [r["message_class"] for r in sorted(data, key=lambda r: -r["weight"])]
    y = alt.Y("message_class:N", title=None, sort=order)
    tooltip = [
        alt.Tooltip("message_class:N", title="class"),
        alt.Tooltip("weight:Q", format=",.4f"),
        alt.Tooltip("previous_weight:Q", title="last week", format=",.4f"),
        alt.Tooltip("change:Q", format="+,.4f"),
        alt.Tooltip("status:N"),
    ]
    bars = (
        alt.Chart(alt.Data(values=data))
        .mark_bar(height=14)
        .encode(
            y=y,
            x=alt.X("weight:Q", title="weight (value units per send)"),
            color=alt.Color("channel:N", legend=alt.Legend(orient="bottom")),
            tooltip=tooltip,
        )
    )
    ticks = (
        alt.Chart(alt.Data(values=[d for d in data if d["previous_weight"] is not None]))
        .mark_tick(color=NAIVE, thickness=2, size=20)
        .encode(y=y, x="previous_weight:Q", tooltip=tooltip)
    )
    zero = alt.Chart().mark_rule(color="#8c959f").encode(x=alt.datum(0))
    return alt.layer(bars, ticks, zero).properties(
        width=2 * WIDTH,
        height=max(60, 26 * len(data)),
        title=alt.Title(
            "Value weights this week",
            subtitle="Bar: this week's weight; black tick: last week's. "
            "A weight at or below 0 means: do not send for value.",
        ),
    )


def reach_chart(rows: Sequence[dict[str, Any]]) -> Any:
    """Share of users reachable on each channel at the end of each week."""
    import altair as alt

    data = values(
        [r for r in rows if r.get("rate") is not None],
        ("week", "channel", "rate", "reachable", "exits"),
    )
    return (
        alt.Chart(alt.Data(values=data))
        .mark_line(point=True)
        .encode(
            x=alt.X("week:O", title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y(
                "rate:Q",
                title="users opted in",
                axis=alt.Axis(format=".0%"),
                scale=alt.Scale(zero=False),
            ),
            color=alt.Color("channel:N", legend=alt.Legend(orient="bottom")),
            tooltip=[
                alt.Tooltip("week:O"),
                alt.Tooltip("channel:N"),
                alt.Tooltip("rate:Q", title="opted in", format=".2%"),
                alt.Tooltip("reachable:Q", format=","),
                alt.Tooltip("exits:Q", title="opted out this week", format=","),
            ],
        )
        .properties(
            width=2 * WIDTH,
            height=200,
            title=alt.Title(
                "Reachable users per channel",
                subtitle="Opted in at the start of the data and not opted out since, "
                "at each week's end.",
            ),
        )
    )


def daily_chart(rows: Sequence[dict[str, Any]]) -> Any:
    """Sends and outcome events per day of the week; a day without rows is flagged red."""
    import altair as alt

    data = [
        {"day": r["day"], "kind": kind, "rows": r[kind], "gap": r[kind] == 0}
        for kind in ("sends", "outcomes")
        for r in rows
    ]
    x = alt.X(
        "day:O",
        title=None,
        axis=alt.Axis(labelAngle=0, labelExpr="utcFormat(toDate(datum.value), '%a %d')"),
    )
    bars = (
        alt.Chart()
        .mark_bar(color="#54aeff")
        .encode(
            x=x,
            y=alt.Y("rows:Q", title="rows", axis=alt.Axis(format="~s", tickCount=4)),
            tooltip=[
                alt.Tooltip("day:O"),
                alt.Tooltip("kind:N"),
                alt.Tooltip("rows:Q", format=","),
            ],
        )
    )
    gaps = (
        alt.Chart()
        .mark_text(color=BAD, fontWeight="bold", dy=-8, text="no rows")
        .encode(x=x, y=alt.datum(0))
        .transform_filter("datum.gap")
    )
    return (
        alt.layer(bars, gaps, data=alt.Data(values=data))
        .properties(width=WIDTH, height=130)
        .facet(column=alt.Column("kind:N", title=None, sort=["sends", "outcomes"]))
        .resolve_scale(y="independent")
        .properties(
            title=alt.Title(
                "Rows per day (UTC)", subtitle="A day marked red has no rows: a data gap."
            )
        )
    )
