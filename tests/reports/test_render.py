"""Charts, HTML and summary from hand-built aggregate data: self-contained, escaped, complete."""

from __future__ import annotations

import dataclasses
import json
import re
from html.parser import HTMLParser

import pytest

from tests.reports.conftest import CLASSES, make_data
from upshot.config import Config
from upshot.reports import alerts, charts, html, render, summary
from upshot.reports.html_sections import SECTIONS

EXPECTED = {
    "uplift",
    "optout",
    "weights",
    "history",
    "reach",
    "experiment-send_time_test",
    "daily",
    "touches",
}


@pytest.fixture(scope="module")
def built():
    data = make_data()
    config = Config()
    found = alerts.evaluate(data, config)
    chart_list = charts.charts(data, config.governance.max_optout_harm, "reachability")
    page = html.page(data, found, chart_list, config, bundle=render.javascript())
    return data, found, chart_list, page


class _Refs(HTMLParser):
    """Every script src, stylesheet href and the text of inline <style> blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.links: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.scripts.append(a["src"])
        if tag == "link":
            self.links.append(a.get("href") or "")
        self._in_style = tag == "style"

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


def test_every_chart_is_built_and_renders_to_png_and_svg(built):
    _, _, chart_list, _ = built
    assert {c.name for c in chart_list} == EXPECTED
    for chart in chart_list:
        png = render.to_png(chart.spec)
        assert png[:8] == b"\x89PNG\r\n\x1a\n", chart.name
        assert len(png) > 5_000, chart.name  # a drawn chart, not an empty canvas
        svg = render.to_svg(chart.spec)
        assert svg.lstrip().startswith("<svg"), chart.name
        assert "<text" in svg, chart.name


def test_charts_hold_only_the_aggregates_they_draw(built):
    _, _, chart_list, _ = built
    for chart in chart_list:
        text = json.dumps(chart.spec)
        assert "user_id" not in text
        assert '"url"' not in text  # data inline, never fetched

        def datasets(node):
            if isinstance(node, dict):
                if "values" in node and isinstance(node["values"], list):
                    yield node["values"]
                for v in node.values():
                    yield from datasets(v)
            elif isinstance(node, list):
                for v in node:
                    yield from datasets(v)

        for rows in datasets(chart.spec):
            assert len(rows) <= 100, chart.name  # pre-aggregated: a row per class/week/day


def test_the_html_has_no_external_script_or_stylesheet(built):
    *_, page = built
    refs = _Refs()
    refs.feed(page)
    assert refs.scripts == []
    assert refs.links == []
    assert not any(re.search(r"@import|url\(\s*['\"]?https?:", s) for s in refs.styles)
    # the Vega libraries are inlined, and the embed code finds every chart's slot
    assert "vegaEmbed" in page
    for name in EXPECTED:
        assert f'id="chart-{name}"' in page
    specs = re.search(
        r'<script type="application/json" id="upshot-specs">(.*?)</script>', page, re.S
    )
    assert specs
    assert set(json.loads(specs.group(1))) == EXPECTED


def test_the_html_shows_alerts_first_and_every_section(built):
    _, found, _, page = built
    order = [page.index(f'id="{anchor}"') for anchor, _ in SECTIONS]
    assert order == sorted(order)
    first_alert = next(iter(found))
    assert page.index(first_alert.message.split(":")[0]) < page.index('id="headline"')
    for cls in CLASSES:
        assert cls in page
    assert "user_id" not in page


def test_values_are_escaped():
    hostile = '<script>alert("x")</script>'
    data = make_data()
    data = dataclasses.replace(
        data,
        uplift=tuple(
            {**r, "message_class": hostile} if r["message_class"] == "promo_blast_push" else r
            for r in data.uplift
        ),
    )
    config = Config()
    page = html.page(data, alerts.evaluate(data, config), [], config, bundle="")
    assert hostile not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_a_spec_cannot_close_its_script_tag():
    data = make_data()
    data = dataclasses.replace(
        data,
        daily=tuple(
            {**d, "day": "</script><b>"} if i == 0 else d for i, d in enumerate(data.daily)
        ),
    )
    config = Config()
    chart_list = charts.charts(data, 0.002, "reachability")
    page = html.page(data, alerts.evaluate(data, config), chart_list, config, bundle="")
    body = page.split('id="upshot-specs">', 1)[1].split("</script>", 1)[0]
    assert "</script><b>" not in body
    assert json.loads(body)["daily"]


def test_summary_md_leads_with_alerts_and_has_the_headline(built):
    data, found, _, _ = built
    text = summary.markdown(data, found)
    lines = text.splitlines()
    assert lines[0] == "# upshot weekly report: 2026-W47 (16–22 Nov 2026)"
    assert text.index("**Alerts:**") < text.index("## Headline")
    assert "**CRITICAL** promo\\_blast\\_push adds" in text
    assert "| Incremental conversions |" in text
    assert "send\\_time\\_test: **ship**" in text
    assert "user_id" not in text


def test_missing_sections_say_so_instead_of_drawing_zeros():
    data = make_data()
    empty = dataclasses.replace(
        data,
        uplift=(),
        history=(),
        weights=(),
        weights_info={"status": "no_weights"},
        experiments=(),
        decompositions=(),
        reach=(),
        touches=(),
    )
    config = Config()
    chart_list = charts.charts(empty, 0.002, "reachability")
    assert [c.name for c in chart_list] == ["daily"]
    page = html.page(empty, alerts.evaluate(empty, config), chart_list, config, bundle="")
    assert "No uplift estimates for this week." in page
    assert "No weights were published for this week." in page
    assert "No experiment was live this week." in page
    text = summary.markdown(empty, alerts.evaluate(empty, config))
    assert "No weights were published" in text
