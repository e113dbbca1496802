"""The self-contained HTML report: one file, Vega inlined, no external script or style.

`page` fills `templates/report.html` with the sections of `html_sections`, the CSS from
`templates/report.css`, every chart's Vega-Lite spec (data inline, as JSON in a
`<script type="application/json">`) and vl-convert's bundle of Vega, Vega-Lite and
vega-embed. Every value is escaped; nothing is fetched when the file is opened.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from string import Template
from typing import TYPE_CHECKING

from upshot.reports import html_experiments as x
from upshot.reports import html_longterm as lt
from upshot.reports import html_sections as s
from upshot.reports.html_kit import e

if TYPE_CHECKING:
    from upshot.config import Config
    from upshot.reports.alerts import Alerts
    from upshot.reports.charts import Chart
    from upshot.reports.data import ReportData


def script_json(text: str) -> str:
    """JSON made safe to sit inside a `<script>` element: `<`, `>` and `&` become the JSON
    escapes \\u003c, \\u003e, \\u0026. Only `</` was escaped before, but `<!--<script>`
    in a name switches the HTML parser into a state where `</script>` no longer closes
    the element, and then no chart renders. The JSON still parses to the same value:
    those characters can only occur inside strings, where the escapes mean them."""
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _template(name: str) -> str:
    return resources.files("upshot.reports").joinpath(f"templates/{name}").read_text("utf-8")


def page(
    data: ReportData,
    alerts: Alerts,
    charts: Sequence[Chart],
    config: Config,
    *,
    bundle: str,
) -> str:
    """The whole HTML document. `bundle` is the Vega JavaScript (`render.javascript()`)."""
    from upshot import __version__

    by_name = {c.name: c for c in charts}
    body = "".join(
        (
            s.header(data, alerts),
            s.alerts_section(alerts),
            s.headline_section(data),
            s.uplift_section(data, by_name),
            lt.longterm_section(data, by_name, config),
            s.weights_section(data, by_name),
            s.history_section(data, by_name),
            s.reach_section(data, by_name, config),
            x.experiments_section(data, by_name),
            s.health_section(data, by_name),
            s.footer(data),
        )
    )
    specs = json.dumps({c.name: c.spec for c in charts}, sort_keys=True, allow_nan=False)
    return Template(_template("report.html")).substitute(
        version=e(__version__),
        title=e(f"upshot weekly report {data.week}"),
        css=_template("report.css"),
        body=body,
        specs=script_json(specs),
        bundle=bundle,
    )
