"""Output people can read: numbers with significant digits, never an exponent for a count
or `inf%`; boolean flags show both spellings in --help."""

from __future__ import annotations

import math

import pytest

from tests.conftest import run_cli
from upshot.results import format_value


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("n_treatment", 460000.0, "460000"),
        ("effect", 1234.5, "1234"),
        ("effect", 123.456, "123.5"),
        ("effect", 0.012345, "0.01235"),
        ("effect", -2.5, "-2.5"),
        ("effect", 0.0, "0"),
        ("effect", 1e-6, "1.000e-06"),
        ("effect", math.nan, "NaN"),
        ("rel_effect", math.inf, "inf"),
        ("rel_effect", -math.inf, "-inf"),
        ("rel_effect", 0.0123, "1.23%"),
        ("pvalue", 0.04567, "0.0457"),
    ],
)
def test_numbers_print_with_significant_digits(name, value, shown):
    assert format_value(name, value) == shown


@pytest.mark.parametrize(
    ("command", "flag"),
    [
        (["uplift"], "--refute"),
        (["run"], "--load"),
        (["touches"], "--store"),
        (["weights", "export"], "--evaluate"),
    ],
)
def test_boolean_flags_show_both_spellings(command, flag):
    result = run_cli(*command, "--help", env={"COLUMNS": "200"})
    assert result.code == 0
    line = next(x for x in result.out.splitlines() if f" {flag} " in x)
    assert f"--no-{flag[2:]}" in line


@pytest.mark.slow  # one small linear fit (yes/no spelled treatment on the --table path)
def test_uplift_tables_fit_100_columns_and_wide_shows_the_rest(tmp_path):
    import polars as pl

    from tests.attribution.uplift.uplift_world import make_decisions

    frame, _ = make_decisions(600, seed=3)
    path = tmp_path / "decisions.csv"
    frame.with_columns(
        pl.when(pl.col("treated")).then(pl.lit("yes")).otherwise(pl.lit("no")).alias("treated")
    ).write_csv(path)
    args = ("uplift", "--table", str(path), "--treatment-col", "treated", "--outcome-col",
            "engagement", "--covariates", "activity,tenure_years", "--propensity-col",
            "propensity", "--nuisance", "linear", "--no-refute", "--class", "banner")  # fmt: skip
    compact = run_cli(*args)
    assert compact.code == 0, compact.err
    lines = compact.out.splitlines()
    header = next(x for x in lines if " ate " in x)
    assert header.split() == ["class", "┃", "objective", "┃", "ate", "┃", "ci", "┃", "naive",
                              "┃", "status"]  # fmt: skip
    assert max(len(x) for x in lines) <= 100
    row = next(x for x in lines if x.lstrip().startswith("banner"))
    assert "e+" not in row
    assert "…" not in row
    wide = run_cli(*args, "--wide")
    assert wide.code == 0, wide.err
    assert "ate_ci_lower" in wide.out
    assert "n_treated" in wide.out
    assert "qini" in wide.out
