"""Edge cases give a status and NaN, never a crash and never a real-looking number."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

from upshot.errors import UsageError
from upshot.experiments import analyze
from upshot.results import dumps

NUMBERS = ("effect_se", "effect_ci_lower", "effect_ci_upper", "pvalue", "pvalue_adj")


def write(tmp_path, **cols):
    path = tmp_path / "users.parquet"
    pl.DataFrame(cols).write_parquet(path)
    return path


def nan_stats(r) -> bool:
    return all(math.isnan(getattr(r, k)) for k in NUMBERS)


def base(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "variant": (["control", "treatment"] * n)[:n],
        "y": rng.normal(10, 2, n).tolist(),
        "num": rng.poisson(2, n).astype(float).tolist(),
        "den": rng.poisson(5, n).astype(float).tolist(),
    }


def test_empty_arm_named_by_the_split(tmp_path):
    cols = base()
    path = write(tmp_path, **cols)
    a = analyze(table=path, metrics=["y"], split={"control": 1, "treatment": 1, "ghost": 1})
    ghost = a.result("y", "ghost")
    assert ghost.status == "insufficient_data"
    assert ghost.n_treatment == 0
    assert nan_stats(ghost)
    assert math.isnan(ghost.effect)
    assert math.isnan(ghost.treatment)
    assert a.result("y", "treatment").status == "ok"
    assert a.srm.status == "srm"
    json.loads(dumps(a.to_document()))  # strict JSON: NaN became null


def test_single_user_arm(tmp_path):
    cols = base(101)
    cols["variant"] = ["control"] * 100 + ["treatment"]
    a = analyze(table=write(tmp_path, **cols), metrics=["y"])
    r = a.result("y")
    assert r.status == "insufficient_data"
    assert r.n_treatment == 1
    assert nan_stats(r)
    assert math.isnan(r.effect)
    assert r.treatment == cols["y"][-1]  # the one user's value is a real mean


def test_zero_variance(tmp_path):
    cols = base()
    cols["y"] = [3.0] * 200
    r = analyze(table=write(tmp_path, **cols), metrics=["y"]).result("y")
    assert r.status == "zero_variance"
    assert r.effect == 0.0
    assert nan_stats(r)


def test_zero_denominator_of_a_ratio(tmp_path):
    cols = base()
    cols["den"] = [0.0 if v == "control" else 1.0 for v in cols["variant"]]
    r = analyze(table=write(tmp_path, **cols), ratios=["num/den"]).result("num/den")
    assert r.status == "zero_denominator"
    assert math.isnan(r.effect)
    assert nan_stats(r)
    assert math.isnan(r.control)


def test_zero_control_mean_leaves_only_the_relative_lift_undefined(tmp_path):
    cols = base()
    cols["y"] = [0.0 if v == "control" else float(i % 3) for i, v in enumerate(cols["variant"])]
    r = analyze(table=write(tmp_path, **cols), metrics=["y"]).result("y")
    assert r.status == "zero_denominator"
    assert math.isfinite(r.effect)
    assert math.isfinite(r.pvalue)
    assert math.isnan(r.rel_effect)
    assert math.isnan(r.rel_effect_ci_lower)


def test_unknown_variant_label_is_excluded_and_flagged(tmp_path):
    cols = base()
    cols["variant"] = [v if i % 10 else "treatmnt" for i, v in enumerate(cols["variant"])]
    a = analyze(table=write(tmp_path, **cols), metrics=["y"], split={"control": 1, "treatment": 1})
    assert a.srm.status == "unknown_variant"
    assert a.srm.unknown == {"treatmnt": 20}
    assert a.excluded == {"unknown_variant": 20}
    assert [r.arm for r in a.results] == ["treatment"]


def test_control_label_missing_from_the_data_is_a_usage_error(tmp_path):
    """Before: an empty 'baseline' arm, insufficient_data rows and an SRM alarm."""
    cols = base()
    with pytest.raises(UsageError, match=r"--control baseline: no such arm \(arms found: "):
        analyze(table=write(tmp_path, **cols), metrics=["y"], control="baseline")


def test_users_in_several_arms_are_excluded_and_counted(tmp_path):
    cols = base(200)
    cols["user"] = [f"u{i}" for i in range(200)]
    cols["user"][1] = "u0"  # u0 is in control and treatment
    a = analyze(table=write(tmp_path, **cols), metrics=["y"], user_col="user")
    assert a.excluded == {"multi_arm": 2}
    assert a.arms == {"control": 99, "treatment": 99}


def test_no_rows_at_all(tmp_path):
    path = tmp_path / "empty.parquet"
    pl.DataFrame(
        {"variant": [], "y": []}, schema={"variant": pl.String, "y": pl.Float64}
    ).write_parquet(path)
    a = analyze(table=path, metrics=["y"], split={"control": 1, "treatment": 1})
    assert a.srm.status == "insufficient_data"
    assert a.results[0].status == "insufficient_data"


def test_infinite_values_fail_the_metric_not_the_run(tmp_path):
    cols = base()
    cols["y"][3] = float("inf")
    a = analyze(table=write(tmp_path, **cols), metrics=["y", "num"])
    assert a.result("y").status == "failed:non_finite_values"
    assert math.isnan(a.result("y").effect)
    assert math.isnan(a.result("y").control)
    assert a.result("num").status == "ok"


def test_a_nan_value_is_missing(tmp_path):
    cols = base()
    cols["y"][3] = float("nan")  # row 3 is a treatment user
    r = analyze(table=write(tmp_path, **cols), metrics=["y"]).result("y")
    assert r.status == "ok"
    assert (r.n_missing_control, r.n_missing_treatment) == (0, 1)
    assert (r.n_control, r.n_treatment) == (100, 99)


def test_a_metric_cannot_be_its_own_covariate(tmp_path):
    from upshot.errors import UsageError

    with pytest.raises(UsageError, match="own covariate"):
        analyze(table=write(tmp_path, **base()), metrics=["y"], covariates={"y": ["y"]})


def test_results_convert_to_polars_and_markdown(tmp_path):
    a = analyze(table=write(tmp_path, **base()), metrics=["y"], ratios=["num/den"])
    frame = a.to_polars()
    assert frame.height == 2
    assert {"metric", "effect", "pvalue_adj"} <= set(frame.columns)
    assert a.to_markdown().startswith("| metric | arm |")


@pytest.mark.parametrize("late", [False, True])
def test_a_csv_value_that_is_not_a_number_names_its_line_column_and_value(tmp_path, late):
    """R writes a missing value as NA: within DuckDB's type sample the column reads as
    text, past it (row 30,000) the sniffed DOUBLE fails mid-file; either way the message
    names the line, the column and the value."""
    from upshot.errors import InputError

    n = 30_000 if late else 300
    lines = ["user_id,arm,revenue"]
    lines += [f"u{i},{'control' if i % 2 else 'treatment'},{i % 7}.5" for i in range(n)]
    lines.insert(n if late else 1, "u_na,control,NA")
    path = tmp_path / "r_export.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    line = (n if late else 1) + 1  # the header is line 1
    with pytest.raises(InputError) as caught:
        analyze(table=path, variant_col="arm", control="control", metrics=["revenue"])
    assert str(caught.value) == (
        f"{path}: line {line}: column 'revenue' holds 'NA', not a number "
        "(a missing value is an empty cell)"
    )
