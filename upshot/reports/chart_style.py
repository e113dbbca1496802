"""The look shared by every chart: sizes, colours, the Vega-Lite theme, small helpers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from upshot.reports.tables import stable

WIDTH = 330  # one panel; two fit side by side in the report's 1080 px column
FONT = "Inter, Segoe UI, Helvetica, Arial, sans-serif"
GOOD, BAD, UNCLEAR, NAIVE = "#1a7f37", "#cf222e", "#8c959f", "#0b0b0b"
VERDICT_COLORS = {"helps": GOOD, "hurts": BAD, "unclear": UNCLEAR}
THEME: dict[str, Any] = {
    "font": FONT,
    "view": {"stroke": None},
    "axis": {
        "labelFontSize": 11,
        "titleFontSize": 11,
        "titleFontWeight": "normal",
        "titleColor": "#57606a",
        "labelColor": "#24292f",
        "gridColor": "#eaeef2",
        "domainColor": "#d0d7de",
        "tickColor": "#d0d7de",
        "labelLimit": 180,
    },
    "legend": {"labelFontSize": 11, "titleFontSize": 11, "titleFontWeight": "normal"},
    "title": {
        "fontSize": 13,
        "fontWeight": 600,
        "anchor": "start",
        "subtitleFontSize": 11,
        "subtitleColor": "#57606a",
        "color": "#24292f",
    },
    "header": {"labelFontSize": 12, "titleFontSize": 12},
    "background": "white",
    "padding": 8,
}


def values(rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> list[dict[str, Any]]:
    """Only `fields` of each row, floats rounded (`tables.stable`): what a chart embeds."""
    return [{f: stable(r.get(f)) for f in fields} for r in rows]


def verdict(row: dict[str, Any], higher_is_better: bool) -> str:
    sign = row.get("significant") or 0
    if sign == 0:
        return "unclear"
    return "helps" if (sign > 0) == higher_is_better else "hurts"


def axis_format(meta: dict[str, Any]) -> str:
    return ".2%" if meta["binary"] else ",.2f"
