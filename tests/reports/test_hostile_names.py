"""Names from the data cannot break the report: charts still render, nothing is injected
into the HTML or summary.md, and experiments whose names slug alike keep their own charts."""

from __future__ import annotations

import dataclasses
import json
import re

from tests.reports.conftest import make_data
from upshot.config import Config
from upshot.reports import alerts, charts, html, summary
from upshot.reports.charts import experiment_chart_name
from upshot.reports.weekly import write_folder

HOSTILE = (
    "<!--<script>",
    "</script><b>x</b>",
    "&amp; &lt;",
    "\"quoted\" 'single'",
    "two\nlines",
    "a|b`c`*d*_e_[f](g)",
)


def _rename(rows, key, names):
    """Give the distinct values of `key` the hostile names, one each (cycling)."""
    values = sorted({r[key] for r in rows})
    mapping = {v: names[i % len(names)] + f" {i}" for i, v in enumerate(values)}
    return tuple({**r, key: mapping[r[key]]} for r in rows)


def _hostile_data(names=HOSTILE):
    data = make_data()
    return dataclasses.replace(
        data,
        uplift=_rename(data.uplift, "message_class", names),
        history=_rename(data.history, "message_class", names),
        weights=_rename(data.weights, "message_class", names),
        touches=_rename(data.touches, "item", names),
        experiments=tuple(
            {**r, "experiment_id": names[0], "arm": names[1], "metric": f"{names[2]}{i}"}
            for i, r in enumerate(data.experiments)
        ),
        decompositions=tuple({**p, "experiment_id": names[0]} for p in data.decompositions),
    )


def _page(data):
    config = Config()
    chart_list = charts.charts(data, config.governance.max_optout_harm, "reachability")
    page = html.page(data, alerts.evaluate(data, config), chart_list, config, bundle="")
    return chart_list, page


def test_hostile_names_leave_every_chart_spec_intact_and_inject_no_script():
    data = _hostile_data()
    chart_list, page = _page(data)
    assert len(chart_list) == 8  # every chart of the sample week, the experiment's included
    # a browser ends the script element at the first `</script` (or never, after a
    # `<!--<script` in it): the text up to there must be exactly the specs, as JSON
    body = page.split('<script type="application/json" id="upshot-specs">', 1)[1]
    body = body.split("</script", 1)[0]
    assert "<" not in body
    assert json.loads(body) == {c.name: c.spec for c in chart_list}
    # the names did reach the specs (the test would be empty otherwise)
    assert "<!--<script>" in json.dumps([c.spec for c in chart_list])
    # the template's three script elements and no other: data never opens one
    assert len(re.findall(r"<script", page, flags=re.IGNORECASE)) == 3
    assert "<!--" not in page
    assert "&lt;!--&lt;script&gt;" in page  # shown as text in the tables


def test_experiments_whose_names_slug_alike_get_their_own_chart_files_and_ids(tmp_path):
    data = make_data()
    one = list(data.experiments)
    data = dataclasses.replace(
        data,
        uplift=(),
        history=(),
        weights=(),
        weights_info={"status": "no_weights"},
        reach=(),
        touches=(),
        decompositions=(),
        experiments=tuple(
            {**r, "experiment_id": name, "rel_effect": r["rel_effect"] + k}
            for k, name in enumerate(("a/b", "a?b", "a-b"))
            for r in one
        ),
    )
    chart_list, page = _page(data)
    names = {c.title: c.name for c in chart_list if c.section == "experiments"}
    assert set(names) == {"a/b", "a?b", "a-b"}
    assert len(set(names.values())) == 3
    assert names["a-b"] == "experiment-a-b"  # a clean id keeps its plain name
    for name in names.values():
        assert page.count(f'id="chart-{name}"') == 1
        assert re.fullmatch(r"experiment-[a-z0-9_-]+", name)
    # each chart draws its own experiment's effects
    specs = {c.title: json.dumps(c.spec) for c in chart_list}
    assert specs["a/b"] != specs["a?b"]
    files = write_folder(tmp_path, data, alerts.evaluate(data, Config()), Config(), {})
    for name in names.values():
        assert f"charts/{name}.png" in files
        assert f"charts/{name}.svg" in files


def test_experiment_chart_names_are_stable_and_cannot_be_forged():
    assert experiment_chart_name("send_time_test") == "experiment-send_time_test"
    hashed = experiment_chart_name("a/b")
    assert hashed == experiment_chart_name("a/b")  # same on every call and run (sha256)
    assert re.fullmatch(r"experiment-a-b-[0-9a-f]{10}", hashed)
    # capitals collide on case-insensitive file systems, so they are hashed too
    assert experiment_chart_name("AB") != experiment_chart_name("ab")
    assert experiment_chart_name("AB").startswith("experiment-ab-")
    # an id spelled like another's hashed name does not take it
    forged = hashed.removeprefix("experiment-")
    assert experiment_chart_name(forged) != hashed
    # long ids that share their first 60 characters
    assert experiment_chart_name("x" * 70 + "1") != experiment_chart_name("x" * 70 + "2")


def _cells(line):
    """A Markdown table row's cells, splitting on pipes that are not backslash-escaped."""
    return re.split(r"(?<!\\)\|", line.strip().strip("|"))


def test_summary_md_keeps_names_as_literal_text_on_their_line():
    names = (  # four, one per class of the sample week (experiment and metric: 0 and 2)
        "<script>alert(1)</script>",
        "[link](https://evil.example) <img src=x onerror=alert(1)>",
        "evil\n# Injected heading\n| forged | row |",
        "- 1. nested|cell",
    )
    data = _hostile_data(names)
    text = summary.markdown(data, alerts.evaluate(data, Config()))
    plain = make_data()
    reference = summary.markdown(plain, alerts.evaluate(plain, Config()))
    assert "<script" not in text
    assert "<img" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "[link](" not in text
    assert "\\[link\\](https://evil.example)" in text  # shown, not a link
    # the same lines, headings and table shapes as the report with ordinary names
    lines, expected = text.splitlines(), reference.splitlines()
    assert len(lines) == len(expected)
    assert [x for x in lines if x.startswith("#")] == [x for x in expected if x.startswith("#")]
    for got, want in zip(lines, expected, strict=True):
        assert got.startswith("|") == want.startswith("|")
        if want.startswith("|"):
            assert len(_cells(got)) == len(_cells(want)), got
        # a list item stays one item: nothing a name adds opens a nested list
        assert re.match(r"- (\s*[-+*]|\s*\d+[.)])\s", got) is None, got
    # the hostile names did reach the summary (as escaped text)
    assert "\\- 1. nested\\|cell" in text
    assert "evil \\# Injected heading \\| forged \\| row \\|" in text
