"""`upshot longterm`: the table path's flags, its JSON document, and its errors."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from tests.attribution.longterm.world import make_world
from tests.conftest import run_cli
from upshot.attribution.longterm.surrogate import surrogate_index


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("longterm")
    w = make_world(np.random.default_rng(3), 600, 500, targeted=True)
    tier = np.random.default_rng(4).choice(["free", "paid"], 600)
    pl.DataFrame(
        {"s1": w.s_h[:, 0], "s2": w.s_h[:, 1], "x1": w.x_h[:, 0], "x2": w.x_h[:, 1]}
        | {"y": w.y_h, "tier": tier}
    ).write_parquet(folder / "history.parquet")
    pl.DataFrame(
        {"t": w.w.astype(int), "s1": w.s[:, 0], "s2": w.s[:, 1], "x1": w.x[:, 0]}
        | {"x2": w.x[:, 1], "p": w.p, "tier": tier[:500]}
    ).write_csv(folder / "experiment.csv")
    return folder, w


def _args(folder, *extra):
    return (
        "longterm", "--history", str(folder / "history.parquet"),
        "--experiment", str(folder / "experiment.csv"), "--treatment-col", "t",
        "--surrogates", "s1,s2", "--long-term-col", "y", *extra,
    )  # fmt: skip


def test_json_document_has_the_issue_fields_and_equals_the_library(tables):
    folder, w = tables
    result = run_cli(*_args(folder, "--covariates", "x1,x2", "--propensity-col", "p", "--json"))
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert list(doc) == [
        "estimate", "se", "ci_lower", "ci_upper", "n_history", "n_experiment",
        "short_term", "method",
    ]  # fmt: skip
    assert list(doc["short_term"]) == ["s1", "s2"]
    assert list(doc["short_term"]["s1"]) == ["effect", "ci_lower", "ci_upper"]
    assert (doc["n_history"], doc["n_experiment"], doc["method"]) == (
        600,
        500,
        "surrogate_index_eif",
    )
    # the CLI is a thin layer: the same numbers as the library on the same arrays and seed
    lib = surrogate_index(w.s_h, w.x_h, w.y_h, w.w, w.s, w.x, propensity=w.p, seed=0)
    assert doc["estimate"] == pytest.approx(lib.estimate, rel=1e-9)
    assert doc["se"] == pytest.approx(lib.se, rel=1e-9)
    assert doc["ci_lower"] < doc["estimate"] < doc["ci_upper"]
    assert doc["short_term"]["s2"]["effect"] == pytest.approx(lib.short_term[1].effect)


def test_text_covariates_are_encoded_and_the_table_prints(tables):
    folder, _ = tables
    result = run_cli(*_args(folder, "--covariates", "x1,x2,tier"))
    assert result.code == 0, result.err
    assert "projected effect on y" in result.out
    assert "short-term effects" in result.out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--covariates", "x1,nope"), "history.parquet: no column 'nope'"),
        (("--propensity-col", "x1"), "experiment.csv: column 'x1' must be in (0, 1)"),
        (("--covariates", "s1"), "column 's1' is both a surrogate and a covariate"),
    ],
)
def test_bad_columns_are_one_line_errors_with_exit_2(tables, extra, message):
    folder, _ = tables
    result = run_cli(*_args(folder, *extra))
    assert result.code == 2
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert lines[-1].startswith("Error: ")
    assert message in lines[-1]


def test_treatment_must_be_binary_and_files_must_exist(tables, tmp_path):
    folder, _ = tables
    pl.read_csv(folder / "experiment.csv").with_columns(t=pl.col("t") * 2).write_csv(
        tmp_path / "bad.csv"
    )
    args = list(_args(folder))
    args[args.index("--experiment") + 1] = str(tmp_path / "bad.csv")
    result = run_cli(*args)
    assert result.code == 2
    assert "bad.csv: column 't' must be 0/1 or true/false" in result.err
    args[args.index("--experiment") + 1] = str(tmp_path / "missing.csv")
    result = run_cli(*args)
    assert result.code == 2
    assert f"Error: --experiment {tmp_path / 'missing.csv'}: no such file" in result.err


@pytest.fixture(scope="module")
def past(tmp_path_factory):
    """Two past windows of two classes; `wearout` harms Y by 0.8 outside the surrogates."""
    from tests.attribution.longterm.world import make_class_window

    folder = tmp_path_factory.mktemp("backtest")
    rng = np.random.default_rng(5)
    frames, history = [], None
    for window in ("2026-W01", "2026-W02"):
        for name, direct in (("steady", 0.0), ("wearout", -0.8)):
            w = make_class_window(rng, 800, 800, (0.4, 0.3), direct=direct)
            frames.append(
                pl.DataFrame(
                    {"window": window, "message_class": name, "t": w.w.astype(int)}
                    | {"s1": w.s[:, 0], "s2": w.s[:, 1], "x1": w.x[:, 0], "y": w.y}
                )
            )
            history = history if history is not None else w
    pl.concat(frames).write_parquet(folder / "past.parquet")
    pl.DataFrame(
        {"s1": history.s_h[:, 0], "s2": history.s_h[:, 1], "x1": history.x_h[:, 0]}
        | {"y": history.y_h}
    ).write_parquet(folder / "history.parquet")
    return folder


def test_validate_flags_the_planted_class(past):
    result = run_cli(
        "longterm", "validate", "--history", str(past / "history.parquet"),
        "--past", str(past / "past.parquet"), "--treatment-col", "t",
        "--surrogates", "s1,s2", "--long-term-col", "y", "--covariates", "x1", "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["flagged"] == ["wearout"]
    assert [c["message_class"] for c in doc["classes"]] == ["steady", "wearout"]
    assert [(r["window"], r["message_class"]) for r in doc["windows"]] == [
        ("2026-W01", "steady"), ("2026-W01", "wearout"),
        ("2026-W02", "steady"), ("2026-W02", "wearout"),
    ]  # fmt: skip
    assert set(doc) >= {"calibration_slope", "coverage", "rmse_projected", "rmse_naive"}


def test_validate_and_the_table_path_name_missing_flags():
    result = run_cli("longterm", "validate", "--history", "h.parquet")
    assert result.code == 2
    assert result.err.strip().splitlines()[-1] == "Error: --past is required"
    result = run_cli("longterm", "--history", "h.parquet")
    assert result.code == 2
    assert result.err.strip().splitlines()[-1] == "Error: --experiment is required"
