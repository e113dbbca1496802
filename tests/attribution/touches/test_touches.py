"""Rule-based credits, the path-table format, `upshot touches --paths`, and chart data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli
from upshot.attribution.touches.attribute import (
    METHODS,
    PATH_METHODS,
    attribute,
    chart_data,
    from_paths,
)
from upshot.attribution.touches.rules import (
    first_touch,
    last_touch,
    linear,
    path_table,
    read_paths,
    time_decay,
)
from upshot.errors import InputError, UsageError

ROWS = [("push > email > push", 2, 3, 20.0), ("email", 1, 5, 5.0), ("in_app > push", 1, 0, 30.0)]


def table():
    return path_table(*zip(*ROWS, strict=True))


def credit(c):
    return dict(zip(c.channels, c.conversions.tolist(), strict=True))


def value(c):
    return dict(zip(c.channels, c.value.tolist(), strict=True))


def test_first_and_last_touch_by_hand():
    assert credit(first_touch(table())) == {"email": 1.0, "in_app": 1.0, "push": 2.0}
    assert credit(last_touch(table())) == {"email": 1.0, "in_app": 0.0, "push": 3.0}
    assert value(last_touch(table())) == {"email": 5.0, "in_app": 0.0, "push": 50.0}


def test_linear_splits_equally_and_counts_repeats():
    # push > email > push: push 2/3 and email 1/3 of 2 conversions and of 20 value
    got = credit(linear(table()))
    assert got == pytest.approx({"email": 2 / 3 + 1, "in_app": 0.5, "push": 4 / 3 + 0.5})
    assert value(linear(table())) == pytest.approx(
        {"email": 20 / 3 + 5, "in_app": 15.0, "push": 40 / 3 + 15}
    )


def test_time_decay_weights_halve_per_half_life():
    # touches 2 days and 0 days before one conversion, half-life 2 days: weights 1/2 and 1
    got = time_decay([(("email", "push"), (2.0, 0.0), 1.0, 9.0)], half_life_days=2.0)
    assert credit(got) == pytest.approx({"email": 1 / 3, "push": 2 / 3})
    assert value(got) == pytest.approx({"email": 3.0, "push": 6.0})
    with pytest.raises(UsageError, match="half_life"):
        time_decay([], half_life_days=0)


def test_path_table_parses_merges_and_defaults():
    merged = path_table(["a > b", " a >b ", "c"], [1, 2, 0], [0, 1, 4])
    assert merged.paths == (("a", "b"), ("c",))
    np.testing.assert_array_equal(merged.conversions, [3, 0])
    np.testing.assert_array_equal(merged.values, [3, 0])  # each conversion worth 1
    assert merged.total_nulls == 5


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"paths": ["a"], "conversions": [-1]}, InputError, "total_conversions row 1 == -1.0"),
        ({"paths": ["a"], "conversions": [math.nan]}, InputError, "must be finite"),
        ({"paths": ["a", "b"], "conversions": [1]}, UsageError, "has 1 rows, must have 2"),
        ({"paths": ["a > "], "conversions": [1]}, InputError, "empty touch"),
    ],
)
def test_path_table_rejects_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        path_table(**kwargs)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(["push", "email", "in_app", "sms"]), min_size=1, max_size=6),
            st.integers(0, 30),
            st.integers(0, 30),
            st.floats(0, 100),
        ),
        min_size=1,
        max_size=20,
    ).filter(lambda rows: sum(r[1] for r in rows) > 0),
    st.integers(1, 3),
)
def test_every_method_adds_up_to_total_conversions(rows, order):
    paths = path_table(*zip(*rows, strict=True))
    for credits in attribute(paths, PATH_METHODS, markov_order=order):
        assert credits.status == "ok"
        assert credits.channels == paths.channels
        assert credits.conversions.sum() == pytest.approx(paths.total_conversions, rel=1e-9)
        assert credits.value.sum() == pytest.approx(paths.total_value, rel=1e-9, abs=1e-9)
        assert (credits.conversions >= -1e-12).all()


def test_attribute_refuses_unknown_methods_and_time_decay_without_times():
    with pytest.raises(UsageError, match="must be one of"):
        attribute(table(), ["u_shaped"])
    with pytest.raises(UsageError, match="time_decay needs touch times"):
        attribute(table(), METHODS)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_paths_accepts_channel_attribution_files(tmp_path):
    semicolon = write(
        tmp_path,
        "paths.csv",
        "path;total_conversions;total_conversion_value;total_null\n"
        "push > email;3;30.5;7\nemail;1;4;0\n",
    )
    got = read_paths(semicolon)
    assert got.paths == (("push", "email"), ("email",))
    np.testing.assert_array_equal(got.values, [30.5, 4])
    np.testing.assert_array_equal(got.nulls, [7, 0])
    ndjson = write(tmp_path, "paths.ndjson", '{"PATH": "a > b", "Total_Conversions": 2}\n')
    assert read_paths(ndjson).total_conversions == 2  # columns are case-insensitive
    parquet = tmp_path / "paths.parquet"
    import duckdb

    duckdb.sql(f"COPY (SELECT * FROM read_csv('{semicolon}')) TO '{parquet}'")
    assert read_paths(parquet).total_value == 34.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("route,total_conversions\na,1\n", "missing column 'path'"),
        ("path,total_conversions\na,lots\n", "row 1: total_conversions == 'lots'"),
        ("path,total_conversions,total_null\na,1,x\n", "row 1: total_null == 'x'"),
        ("path,total_conversions\na,-2\n", "must be finite and >= 0"),
    ],
)
def test_read_paths_names_the_bad_file_row_and_field(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        read_paths(write(tmp_path, "bad.csv", text))


def test_cli_paths_json_document(tmp_path):
    file = write(
        tmp_path,
        "p.csv",
        "path;total_conversions;total_null\n"
        + "\n".join(f"{p};{c};{n}" for p, c, n, _ in ROWS)
        + "\n",
    )
    result = run_cli("touches", "--paths", str(file), "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["by"] == "channel"
    assert doc["source"] == "paths"
    assert doc["total_conversions"] == 4
    assert doc["methods"] == list(PATH_METHODS)
    assert {e["method"] for e in doc["credits"]} == set(PATH_METHODS)
    for entry in doc["credits"]:
        assert {"channel", "method", "conversions", "value", "share"} <= set(entry)
    for method in PATH_METHODS:
        entries = [e for e in doc["credits"] if e["method"] == method]
        assert sum(e["conversions"] for e in entries) == pytest.approx(4)
        assert sum(e["share"] for e in entries) == pytest.approx(1)
    assert doc["markov"]["order"] == 1
    assert doc["shapley"]["standard_error"] == 0
    assert {c["channel"] for c in doc["causal"]} == {"email", "in_app", "push"}
    assert all(c["effect"] is None and c["status"] == "no_warehouse" for c in doc["causal"])


def test_cli_paths_by_class_and_method_selection(tmp_path):
    file = write(tmp_path, "p.csv", "path,total_conversions,total_null\npromo > digest,2,1\n")
    result = run_cli(
        "touches",
        "--paths",
        str(file),
        "--by",
        "class",
        "--method",
        "markov",
        "--method",
        "last_touch",
        "--markov-order",
        "2",
        "--json",
    )
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["methods"] == ["last_touch", "markov"]
    assert {"class", "method"} <= set(doc["credits"][0])
    assert doc["markov"]["order"] == 2


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--week", "2026-W47"], 2, "--paths has no touch times"),
        (["--method", "time_decay"], 2, "time_decay needs touch times"),
        (["--method", "u_shaped"], 2, "must be one of"),
        (["--markov-order", "9"], 2, "markov order == 9"),
        (["--by", "campaign"], 2, ""),
    ],
)
def test_cli_paths_usage_errors(tmp_path, extra, code, message):
    file = write(tmp_path, "p.csv", "path,total_conversions\na,1\n")
    result = run_cli("touches", "--paths", str(file), *extra, "--json")
    assert result.code == code
    assert result.out == ""
    assert message in result.err


def test_cli_paths_file_errors(tmp_path):
    missing = run_cli("touches", "--paths", str(tmp_path / "nope.csv"))
    assert missing.code == 2
    assert "no such file" in missing.err
    bad = run_cli("touches", "--paths", str(write(tmp_path, "b.csv", "x,y\n1,2\n")))
    assert bad.code == 1
    assert "missing column 'path'" in bad.err


def test_cli_paths_table_and_csv_output(tmp_path):
    file = write(tmp_path, "p.csv", "path,total_conversions,total_null\na > b,2,1\nb,1,3\n")
    table_out = run_cli("touches", "--paths", str(file))
    assert table_out.code == 0
    assert "credited conversions by method" in table_out.out
    csv_out = run_cli("touches", "--paths", str(file), "--format", "csv")
    assert csv_out.out.splitlines()[0] == "channel,method,conversions,value,share,se,status"


def test_chart_data_is_sorted_long_and_keeps_missing_as_none(tmp_path):
    file = write(tmp_path, "p.csv", "path,total_conversions,total_null\na > b,2,1\nb,1,3\n")
    result = from_paths(file)
    data = chart_data(result.rows())
    assert [(d["item"], d["method"]) for d in data[:6]] == [
        ("a", m) for m in ("first_touch", "last_touch", "linear", "markov", "shapley", "causal")
    ]
    causal = [d for d in data if d["kind"] == "causal"]
    assert causal
    assert all(d["conversions"] is None for d in causal)
    touch = [d for d in data if d["kind"] == "touch" and d["method"] == "linear"]
    assert sum(d["conversions"] for d in touch) == pytest.approx(3)
    json.dumps(data, allow_nan=False)  # ready for a chart spec as is
