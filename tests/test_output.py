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
