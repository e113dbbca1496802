"""Stratified row caps: exact allocation, the strata kept, and unbiased by simulation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from upshot.attribution.uplift.sampling import (
    allocate,
    capped_folds,
    sampling_record,
    spare_rows,
    strata_codes,
    stratified_rows,
)


@given(
    counts=st.lists(st.integers(0, 10_000), min_size=1, max_size=6),
    share=st.floats(0.0, 1.0),
)
@settings(max_examples=300, deadline=None)
def test_allocation_is_proportional_to_the_row(counts, share):
    counts = np.array(counts)
    size = int(share * counts.sum())
    take = allocate(counts, size)
    assert take.sum() == size
    assert np.all(take <= counts)
    # largest remainders: every stratum within one row of its exact share
    exact = counts * size / max(counts.sum(), 1)
    assert np.all(np.abs(take - exact) < 1)


def test_allocation_of_an_exact_split_and_of_everything():
    assert allocate(np.array([600, 300, 100]), 100).tolist() == [60, 30, 10]
    assert allocate(np.array([5, 7]), 50).tolist() == [5, 7]


def test_stratified_rows_draw_each_stratum_its_share():
    rng = np.random.default_rng(1)
    T = (rng.random(50_000) < 0.3).astype(np.int8)
    randomized = rng.random(50_000) < 0.05
    strata = strata_codes(T, randomized)
    rows = stratified_rows(strata, 7_000, seed=4)
    assert rows is not None
    assert len(rows) == 7_000
    assert np.all(np.diff(rows) > 0)  # sorted, no row twice
    levels, counts = np.unique(strata, return_counts=True)
    drawn = [int(np.sum(strata[rows] == v)) for v in levels]
    assert drawn == allocate(counts, 7_000).tolist()
    # seeded: the same seed, the same rows; another seed, other rows
    assert np.array_equal(rows, stratified_rows(strata, 7_000, seed=4))
    assert not np.array_equal(rows, stratified_rows(strata, 7_000, seed=5))
    assert stratified_rows(strata, 50_000, seed=4) is None
    assert stratified_rows(strata, 0, seed=4) is None


def test_within_a_stratum_every_row_is_equally_likely():
    # inclusion frequencies over many draws: each row's should be size_k / n_k
    strata = np.repeat([0, 1], [30, 10])
    hits = np.zeros(40)
    draws = 4000
    for seed in range(draws):
        hits[stratified_rows(strata, 20, seed)] += 1
    share = hits / draws
    # stratum 0 keeps 15 of 30, stratum 1 keeps 5 of 10: p = 0.5 for every row; the
    # binomial SE of a frequency over 4000 draws is 0.0079, so 4.5 SE is 0.036
    assert np.all(np.abs(share - 0.5) < 0.036)


def test_the_difference_of_means_on_the_sample_is_unbiased_and_steadier():
    """Simulation with known truth: a class of 20,000 decisions whose treated share differs
    between randomized and targeted rows, and whose outcome level differs too; the
    difference of means on a 2,000-row sample estimates the same population difference
    as on all rows, and stratifying removes the variance from the share drawn."""
    rng = np.random.default_rng(7)
    n = 20_000
    randomized = rng.random(n) < 0.2
    T = np.where(randomized, rng.random(n) < 0.5, rng.random(n) < 0.9).astype(np.int8)
    y = 2.0 * randomized + 0.3 * T + rng.normal(size=n)
    strata = strata_codes(T, randomized)
    truth = y[T == 1].mean() - y[T == 0].mean()  # the population's own difference
    ours, uniform, shares = [], [], []
    for seed in range(1500):
        rows = stratified_rows(strata, 2_000, seed)
        assert rows is not None
        ours.append(y[rows][T[rows] == 1].mean() - y[rows][T[rows] == 0].mean())
        shares.append(T[rows].mean())
        plain = np.random.default_rng(seed).choice(n, 2_000, replace=False)
        uniform.append(y[plain][T[plain] == 1].mean() - y[plain][T[plain] == 0].mean())
    ours_a, uniform_a = np.array(ours), np.array(uniform)
    # unbiased: the mean over 1500 samples within 4 Monte-Carlo SE of the population value
    se = ours_a.std() / np.sqrt(len(ours_a))
    assert abs(ours_a.mean() - truth) < 4 * se
    # the treated share is the population's in every sample (to one row in 2,000)
    assert np.ptp(shares) <= 1 / 2000 + 1e-12
    # and the estimate varies less than a uniform draw's: the mix variance is gone (the
    # ratio is about 0.48 here); two variances over 1500 draws each have a ratio within
    # [0.87, 1.14] by chance at 99% (sd of log F = sqrt(4/1499)), so < 0.8 is no accident
    assert ours_a.var() < 0.8 * uniform_a.var()


def test_capped_folds_keep_the_test_parts_and_cap_the_training_parts():
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(3)
    T = (rng.random(9_000) < 0.4).astype(np.int8)
    strata = strata_codes(T, rng.random(9_000) < 0.1)
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(np.zeros(9_000), T))
    capped, record = capped_folds(folds, strata, 2_500, seed=9)
    tests = np.sort(np.concatenate([test for _, test in capped]))
    assert np.array_equal(tests, np.arange(9_000))  # every row still predicted once
    for (train, test), (full, same_test) in zip(capped, folds, strict=True):
        assert np.array_equal(test, same_test)
        assert len(train) == 2_500
        assert np.all(np.isin(train, full))  # a subset of the fold's own training rows
        levels, counts = np.unique(strata[full], return_counts=True)
        drawn = [int(np.sum(strata[train] == v)) for v in levels]
        assert drawn == allocate(counts, 2_500).tolist()
    assert record == {
        "scheme": "stratified",
        "strata": ["treated", "randomized"],
        "max_rows": 2_500,
        "train_rows": [2_500, 2_500, 2_500],
        "of": [6_000, 6_000, 6_000],
        "seed": 9,
    }
    uncapped, record = capped_folds(folds, strata, 0, seed=9)
    assert all(a is b for (a, _), (b, _) in zip(uncapped, folds, strict=True))
    assert record["scheme"] == "all"


def test_spare_rows_are_the_training_rows_the_cap_left_out():
    """What LightGBM's stopping rule reads: in the fold's training part, in neither its
    capped training rows nor its test part, at most `max_rows`, seeded."""
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(4)
    T = (rng.random(9_000) < 0.4).astype(np.int8)
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(np.zeros(9_000), T))
    capped, _ = capped_folds(folds, strata_codes(T, None), 2_500, seed=9)
    for limit, size in ((1_000, 1_000), (10_000, 6_000 - 2_500)):
        spare = spare_rows(folds, capped, limit, seed=9)
        for left, (train, test), (full, _) in zip(spare, capped, folds, strict=True):
            assert len(left) == size
            assert len(np.unique(left)) == size
            assert np.all(np.isin(left, full))
            assert not np.isin(left, train).any()
            assert not np.isin(left, test).any()
        again = spare_rows(folds, capped, limit, seed=9)
        assert all(np.array_equal(a, b) for a, b in zip(spare, again, strict=True))
    uncapped, _ = capped_folds(folds, strata_codes(T, None), 0, seed=9)
    assert all(len(left) == 0 for left in spare_rows(folds, uncapped, 1_000, seed=9))


@pytest.mark.parametrize("capped", [True, False])
def test_the_sampling_record_counts_each_stratum(capped):
    T = np.array([1, 1, 1, 0, 0, 1, 0, 1], dtype=np.int8)
    randomized = np.array([0, 0, 0, 0, 1, 1, 1, 1], dtype=bool)
    strata = strata_codes(T, randomized)
    rows = stratified_rows(strata, 4, seed=0) if capped else None
    record = sampling_record(strata, rows, seed=0)
    assert record["of"] == 8
    assert record["rows"] == (4 if capped else 8)
    # keys are "<treated>,<randomized>": [drawn, available]
    available = {key: pair[1] for key, pair in record["counts"].items()}
    assert available == {"1,0": 3, "0,0": 1, "0,1": 2, "1,1": 2}
    assert sum(pair[0] for pair in record["counts"].values()) == record["rows"]


def test_whole_class_counts_and_naive_effects_equal_a_group_by():
    import polars as pl

    from upshot.attribution.uplift.classtask import Segment, population

    rng = np.random.default_rng(8)
    n = 3_000
    T = (rng.random(n) < 0.6).astype(np.int8)
    Y = rng.normal(size=(n, 2)) + T[:, None] * [0.5, -1.0]
    codes = rng.integers(0, 3, size=n)
    T[codes == 2] = 1  # level "c" has no held-out decision: its naive effect is NaN
    cells = population(T, Y, [Segment("tier", codes, ("a", "b", "c"))])
    frame = pl.DataFrame({"t": T, "code": codes, "y0": Y[:, 0], "y1": Y[:, 1]})
    for label, rows in [
        ("all", frame),
        *[(f"tier={v}", frame.filter(pl.col("code") == k)) for k, v in enumerate("abc")],
    ]:
        sent, held = rows.filter(pl.col("t") == 1), rows.filter(pl.col("t") == 0)
        assert (cells[label].n_treated, cells[label].n_control) == (sent.height, held.height)
        for j, name in enumerate(("y0", "y1")):
            if held.height == 0:
                assert np.isnan(cells[label].naive[j])
            else:
                expected = sent[name].mean() - held[name].mean()
                assert cells[label].naive[j] == pytest.approx(expected, rel=1e-12, abs=1e-12)
