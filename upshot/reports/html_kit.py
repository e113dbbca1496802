"""HTML building blocks for the report: escaping, tables, cards, chart slots."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from upshot.reports.charts import Chart


def e(value: Any) -> str:
    return escape(str(value), quote=True)


def table(
    columns: Sequence[tuple[str, str]],
    rows: Iterable[dict[str, Any]],
    cell: Callable[[str, dict[str, Any]], str | None] | None = None,
) -> str:
    """An HTML table: `columns` are (key, heading); `cell` returns a cell's inner HTML
    (already escaped) or falls back to the escaped value. A heading starting with `<`
    marks a left-aligned text column."""
    head = "".join(
        f'<th class="text">{e(h[1:])}</th>' if h.startswith("<") else f"<th>{e(h)}</th>"
        for _, h in columns
    )
    body = []
    for row in rows:
        cells = []
        for key, heading in columns:
            inner = cell(key, row) if cell else None
            inner = e(row.get(key, "")) if inner is None else inner
            cls = ' class="text"' if heading.startswith("<") else ""
            cells.append(f"<td{cls}>{inner}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        return '<p class="empty">Nothing to show.</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def chart_div(charts: dict[str, Chart], name: str) -> str:
    if name not in charts:
        return ""
    chart = charts[name]
    return (
        f'<div class="chart" id="chart-{e(name)}" role="img" aria-label="{e(chart.title)}"></div>'
    )


def card(anchor: str, title: str, lede: str, body: str) -> str:
    lede_html = f'<p class="lede">{lede}</p>' if lede else ""
    return f'<section class="card" id="{anchor}"><h2>{e(title)}</h2>{lede_html}{body}</section>'
