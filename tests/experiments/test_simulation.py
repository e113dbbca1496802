"""Simulation with known truth: A/A false-positive rates, CI coverage, sequential peeking,
and the verdict's false-ship rate.

The experiments are vectorised: each replication is one batch entry of the sufficient
statistics, so thousands of experiments go through the library's own arithmetic
(`arm_estimates`, `compare`, `proportions`, `sequential`) at once. The `slow` studies run
3,000 replications per metric type; with a true rate of 5% the estimate's standard error
is 0.40%, so [3.7%, 6.3%] is about +-3.3 SE, and [93.5%, 96.5%] coverage is +-3.8 SE:
a correct method fails these with probability under 0.1%. The fast subset (400
replications) only guards against gross breakage (+-4 SE bounds).
"""

from __future__ import annotations

import numpy as np
import pytest

from upshot.experiments import decide, sequential
from upshot.experiments.effects import compare, proportions
from upshot.experiments.engine import Options, analyze_rows
from upshot.experiments.estimates import Target, arm_estimates
from upshot.experiments.spec import MetricSpec
from upshot.experiments.stats import Moments, product_name, squares_name, sum_name

N = 500  # users per arm
REPS = 3000  # replications per metric type in the slow studies
CHUNK = 500  # replications generated at a time (keeps memory near 50 MB)


def arm_data(
    kind: str, rng: np.random.Generator, reps: int, effect: float
) -> tuple[np.ndarray, list[str]]:
    """Unit-level data (reps, N, k) of one arm; `effect` is the arm's true shift."""
    shape = (reps, N)
    if kind in ("welch", "z"):
        return (rng.gamma(2.0, 10.0, shape) + effect)[..., None], ["y"]
    if kind == "proportion":
        return (rng.random(shape) < 0.1 + effect).astype(float)[..., None], ["y"]
    if kind in ("cuped", "lin"):
        x = rng.gamma(3.0, 4.0, shape)
        y = 5.0 + 0.8 * x + rng.normal(0.0, 2.0 + 0.5 * x / 12.0, shape) + effect
        return np.stack([y, x], axis=-1), ["y", "x"]
    # ratio and ratio_cuped: minutes per active day; users differ in their daily rate p,
    # and E[num | den, p] = den * (p + effect), so the true ratio effect is `effect`
    p = rng.gamma(4.0, 0.25, shape)
    den = rng.poisson(4.0, shape) + 1.0
    num = den * (p + effect) * rng.gamma(2.0, 0.5, shape)
    pre = (rng.poisson(4.0, shape) + 1.0) * p * rng.gamma(2.0, 0.5, shape)
    return np.stack([num, den, pre], axis=-1), ["num", "den", "pre"]


TARGETS = {
    "welch": (Target("y"), "none", "t"),
    "z": (Target("y"), "none", "normal"),
    "proportion": (Target("y", binary=True), "none", None),
    "cuped": (Target("y", covariates=("x",)), "cuped", "t"),
    "lin": (Target("y", covariates=("x",)), "lin", "t"),
    "ratio": (Target("num", "den"), "none", "normal"),
    "ratio_cuped": (Target("num", "den", covariates=("pre",)), "cuped", "normal"),
}
EFFECTS = {  # planted effects large enough to be found most of the time at N = 500
    "welch": 3.5,
    "z": 3.5,
    "proportion": 0.07,
    "cuped": 0.6,
    "lin": 0.6,
    "ratio": 0.35,
    "ratio_cuped": 0.35,
}


def study(kind: str, reps: int, seed: int, effect: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """p-values and CI-covers-the-truth flags of `reps` simulated experiments."""
    rng = np.random.default_rng(seed)
    target, adjust, dist = TARGETS[kind]
    pvals, covered = [], []
    for start in range(0, reps, CHUNK):
        b = min(CHUNK, reps - start)
        (xc, names), (xt, _) = arm_data(kind, rng, b, 0.0), arm_data(kind, rng, b, effect)
        c, t = arm_estimates(
            [Moments.from_data(xc, names), Moments.from_data(xt, names)], target, adjust
        )
        r = proportions(c, t, alpha=0.05) if dist is None else compare(c, t, alpha=0.05, dist=dist)
        pvals.append(r.pvalue)
        covered.append((r.ci_lower <= effect) & (effect <= r.ci_upper))
    return np.concatenate(pvals), np.concatenate(covered)


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(TARGETS))
def test_aa_false_positive_rate_and_coverage(kind):
    p, covered = study(kind, REPS, seed=100 + list(TARGETS).index(kind))
    assert 0.037 <= np.mean(p < 0.05) <= 0.063
    assert 0.935 <= covered.mean() <= 0.965


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(TARGETS))
def test_coverage_of_a_planted_effect(kind):
    p, covered = study(kind, REPS, seed=200 + list(TARGETS).index(kind), effect=EFFECTS[kind])
    assert 0.935 <= covered.mean() <= 0.965
    assert np.mean(p < 0.05) > 0.5  # and the planted effect is usually found


@pytest.mark.parametrize("kind", ["welch", "cuped", "ratio", "proportion"])
def test_fast_seeded_subset(kind):
    p, covered = study(kind, 400, seed=7, effect=0.0)
    assert 0.01 <= np.mean(p < 0.05) <= 0.095  # 5% +- 4 SE at 400 replications
    assert covered.mean() >= 0.905


def test_cuped_reduces_variance_as_much_as_its_se_says():
    rng = np.random.default_rng(3)
    (xc, names), (xt, _) = arm_data("cuped", rng, 1000, 0.0), arm_data("cuped", rng, 1000, 0.0)
    ms = [Moments.from_data(xc, names), Moments.from_data(xt, names)]
    raw = compare(*arm_estimates(ms, Target("y"), "none"), alpha=0.05, dist="t")
    adj = compare(*arm_estimates(ms, Target("y", covariates=("x",)), "cuped"), alpha=0.05, dist="t")
    assert np.all(adj.se < raw.se)
    # the spread of the estimates shrinks as the SEs say; a std from 1,000 draws is within
    # about 4.5% (2 SE) of the truth, and the ratio of two of them within about 7%
    assert np.std(adj.effect) / np.std(raw.effect) == pytest.approx(
        np.mean(adj.se / raw.se), rel=0.1
    )


def peeking(reps: int, seed: int, looks: int = 10) -> tuple[float, float]:
    """Share of A/A experiments declared significant at ANY of `looks` weekly peeks."""
    rng = np.random.default_rng(seed)
    yc, yt = rng.gamma(2.0, 10.0, (2, reps, N))
    cuts = np.linspace(N / looks, N, looks).astype(int)
    fixed = np.zeros(reps, bool)
    seq = np.zeros(reps, bool)
    for n in cuts:
        m = [Moments.from_data(a[:, :n, None], ["y"]) for a in (yc, yt)]
        r = compare(*arm_estimates(m, Target("y"), "none"), alpha=0.05, dist="t")
        fixed |= r.pvalue < 0.05
        seq |= sequential.pvalue(r.effect, r.se, 2 * n, 0.05, 2 * N) < 0.05
    return float(fixed.mean()), float(seq.mean())


@pytest.mark.slow
def test_peeking_inflates_fixed_tests_but_not_confidence_sequences():
    fixed, seq = peeking(2000, seed=11)
    assert fixed > 0.12  # ten looks at a fixed-horizon test: roughly 20% false positives
    assert seq <= 0.05


def test_peeking_fast_subset():
    fixed, seq = peeking(300, seed=12)
    assert fixed > seq


def test_sequential_is_the_inverted_boundary():
    se, n, alpha, tune = np.array(0.7), np.array(4000.0), 0.05, 5000.0
    hw = sequential.halfwidth(se, n, alpha, tune)
    # at effect = half-width the always-valid p-value is exactly alpha
    assert sequential.pvalue(hw, se, n, alpha, tune) == pytest.approx(alpha, rel=1e-9)
    assert hw > 1.96 * se  # wider than the fixed-horizon interval


def _rows(sums: dict[str, tuple[np.ndarray, np.ndarray]], i: int) -> list[dict]:
    """Query-shaped rows of replication i from batched per-arm data of independent metrics."""
    rows = []
    for arm, (data, names) in sums.items():
        x = data[i]
        row: dict = {"variant": arm, "exclusion": "", "n": x.shape[0]}
        s, ss = x.sum(axis=0), (x * x).sum(axis=0)
        for j, v in enumerate(names):
            row[sum_name(v)], row[squares_name(v)] = float(s[j]), float(ss[j])
            for k in range(j + 1, len(names)):
                row[product_name(v, names[k])] = float((x[:, j] * x[:, k]).sum())
        rows.append(row)
    return rows


def false_ship_rate(reps: int, seed: int) -> tuple[float, float]:
    """A/A tests with two success metrics, a guardrail that holds easily and a deterioration
    metric: the least favourable case for the rule, every success metric at its null."""
    rng = np.random.default_rng(seed)
    names = ["s1", "s2", "g", "d"]
    specs = [
        MetricSpec("s1", "s1"),
        MetricSpec("s2", "s2"),
        MetricSpec("g", "g", role="guardrail", margin=0.2),
        MetricSpec("d", "d", role="deterioration", higher_is_better=False),
    ]
    data = {arm: (rng.gamma(2.0, 10.0, (reps, 400, 4)), names) for arm in ("control", "treatment")}
    ships = 0
    for i in range(reps):
        a = analyze_rows(
            _rows(data, i),
            specs,
            experiment="aa",
            control="control",
            split=None,
            options=Options(),
            source="sim",
        )
        ships += decide(a, min_sample=100).verdict == "ship"
    rate = ships / reps
    return rate, float(np.sqrt(0.05 * 0.95 / reps))


@pytest.mark.slow
def test_verdict_false_ship_rate_is_at_most_alpha():
    rate, se = false_ship_rate(2000, seed=5)
    # the rule bounds the rate by alpha (here about 1 - 0.975**2 = 4.9% at most); allow
    # 2.33 SE of simulation noise above it, a 1% chance of a false alarm
    assert rate <= 0.05 + 2.33 * se
    assert rate > 0.02  # the rule is not trivially conservative either


def test_verdict_false_ship_fast_subset():
    rate, se = false_ship_rate(200, seed=6)
    assert rate <= 0.05 + 3 * se
