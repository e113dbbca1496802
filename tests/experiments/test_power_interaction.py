"""Power against statsmodels' NormalIndPower; interactions against OLS y ~ A * B (HC2)."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.stats.power import NormalIndPower

from upshot.errors import UsageError
from upshot.experiments.interaction import interactions
from upshot.experiments.power import Baseline, beta_per_test, plan
from upshot.experiments.spec import MetricSpec
from upshot.experiments.stats import squares_name, sum_name


def test_users_needed_give_exactly_the_target_power():
    baselines = {
        "conv": Baseline(0.05, np.sqrt(0.05 * 0.95)),
        "minutes": Baseline(80.0, 40.0),
        "days": Baseline(5.0, 2.0),
        "opt": Baseline(0.01, 0.1),
    }
    roles = {"conv": "success", "minutes": "success", "days": "guardrail", "opt": "deterioration"}
    p = plan(
        baselines,
        roles,
        mde={"conv": 0.05, "minutes": 0.02},
        margins={"days": 0.02},
        split={"control": 1, "treatment": 3},
    )
    beta = beta_per_test(0.2, 1, 4, 0.01, 0.001)
    assert p.beta_per_test == pytest.approx(beta) == pytest.approx((0.2 - 0.04 - 0.001) / 2)
    rows = {m.metric: m for m in p.metrics}
    for name, level, delta in (
        ("conv", 0.025, 0.05 * 0.05),
        ("minutes", 0.025, 0.02 * 80),
        ("days", 0.05, 0.02 * 5),
    ):
        m = rows[name]
        assert m.level == pytest.approx(level)
        power = NormalIndPower().power(
            effect_size=delta / baselines[name].sd, nobs1=m.users_treatment, alpha=level,
            ratio=m.users_control / m.users_treatment, alternative="larger",
        )  # fmt: skip
        assert power == pytest.approx(1 - beta, rel=1e-9)
    assert rows["opt"].status == "not_powered"
    assert p.users_total == max(m.users_total for m in p.metrics if m.status == "ok")
    assert p.to_document()["users_per_arm"]["treatment"] == pytest.approx(
        p.users_total * 0.75, abs=1
    )


def test_detectable_effect_inverts_users_needed():
    b = {"m": Baseline(10.0, 4.0)}
    p = plan(b, {"m": "success"}, mde={"m": 0.03})
    again = plan(b, {"m": "success"}, mde={"m": 0.03}, users=int(p.users_total))
    # users are whole people (rounded down), which moves the effect by < 1 / users_total
    assert again.metrics[0].detectable_effect == pytest.approx(0.03, rel=1e-3)


def test_a_spent_power_budget_is_refused():
    roles = {f"m{i}": "deterioration" for i in range(30)} | {"s": "success"}
    with pytest.raises(UsageError, match="no power left"):
        plan({k: Baseline(1.0, 1.0) for k in roles}, roles, mde={"s": 0.1})


def cell_rows(data):
    rows = []
    for (a, b), y in data.items():
        rows.append(
            {
                "variant": a,
                "variant_b": b,
                "exclusion": "",
                "n": y.size,
                sum_name("y"): y.sum(),
                squares_name("y"): (y**2).sum(),
            }
        )
    return rows


def test_interaction_is_the_saturated_ols_term_with_hc2():
    rng = np.random.default_rng(12)
    data = {}
    for a in ("control", "treatment"):
        for b in ("control", "high"):
            shift = (
                1.0 * (a == "treatment")
                + 0.5 * (b == "high")
                + 0.8 * (a == "treatment" and b == "high")
            )
            data[(a, b)] = rng.gamma(2.0, 3.0, rng.integers(400, 600)) + shift
    (r,) = interactions(
        cell_rows(data),
        [MetricSpec("y", "y")],
        experiment="A",
        other="B",
        control="control",
        other_control="control",
        alpha=0.05,
        correction="holm",
    )
    y = np.concatenate(list(data.values()))
    A = np.concatenate([np.full(v.size, k[0] == "treatment", float) for k, v in data.items()])
    B = np.concatenate([np.full(v.size, k[1] == "high", float) for k, v in data.items()])
    ols = sm.OLS(y, np.column_stack([np.ones_like(y), A, B, A * B])).fit(cov_type="HC2")
    assert r.effect == pytest.approx(ols.params[3], rel=1e-9)
    assert r.effect_se == pytest.approx(ols.bse[3], rel=1e-9)
    assert r.pvalue == pytest.approx(ols.pvalues[3], rel=1e-6)
    assert r.significant
    assert r.status == "ok"
    assert r.n_cells == tuple(
        data[k].size
        for k in [
            ("control", "control"),
            ("control", "high"),
            ("treatment", "control"),
            ("treatment", "high"),
        ]
    )


def test_interaction_with_an_empty_cell():
    data = {
        ("control", "control"): np.ones(10),
        ("treatment", "control"): np.arange(10.0),
        ("treatment", "high"): np.arange(10.0),
    }
    (r,) = interactions(
        cell_rows(data),
        [MetricSpec("y", "y")],
        experiment="A",
        other="B",
        control="control",
        other_control="control",
        alpha=0.05,
        correction="holm",
    )
    assert r.status == "insufficient_data"
    assert np.isnan(r.effect)
    assert not r.significant
