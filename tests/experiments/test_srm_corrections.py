"""SRM against scipy's chi-square; corrections against statsmodels' multipletests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.multitest import multipletests

from upshot.errors import UsageError
from upshot.experiments.corrections import adjust
from upshot.experiments.srm import srm_test


def test_srm_matches_scipy_chisquare():
    counts = {"control": 5120, "treatment": 4880, "b": 2500}
    split = {"control": 2, "treatment": 2, "b": 1}
    r = srm_test(counts, split)
    total = sum(counts.values())
    ref = stats.chisquare([5120, 4880, 2500], [total * 0.4, total * 0.4, total * 0.2])
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert r.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
    assert r.status == "ok"


def test_srm_flags_a_mismatch_and_unknown_variants():
    assert (
        srm_test({"control": 5300, "treatment": 4700}, {"control": 1, "treatment": 1}).status
        == "srm"
    )
    r = srm_test({"control": 50, "treatment": 50}, {"control": 1, "treatment": 1}, unknown={"x": 3})
    assert r.status == "unknown_variant"
    assert r.unknown == {"x": 3}
    empty = srm_test({}, {"control": 1, "treatment": 1})
    assert empty.status == "insufficient_data"
    assert np.isnan(empty.pvalue)


def test_split_must_be_positive_weights():
    with pytest.raises(UsageError, match="must be > 0"):
        srm_test({"a": 1}, {"a": 1, "b": 0})
    with pytest.raises(UsageError, match="at least two"):
        srm_test({"a": 1}, {"a": 1})


METHODS = {"bonferroni": "bonferroni", "holm": "holm", "bh": "fdr_bh"}


@pytest.mark.parametrize("method", METHODS)
def test_corrections_match_multipletests_seeded(method):
    rng = np.random.default_rng(4)
    p = np.r_[rng.uniform(0, 1, 30), rng.uniform(0, 0.01, 10), [0.02, 0.02, 0.02]]
    ref = multipletests(p, method=METHODS[method])[1]
    np.testing.assert_allclose(adjust(p, method), ref, rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=25), st.sampled_from(list(METHODS)))
def test_corrections_match_multipletests_any_input(p, method):
    ref = multipletests(np.array(p), method=METHODS[method])[1]
    np.testing.assert_allclose(adjust(p, method), ref, rtol=1e-12, atol=1e-15)


def test_nan_pvalues_stay_out_of_the_family():
    p = [0.01, float("nan"), 0.04]
    got = adjust(p, "bonferroni")
    assert np.isnan(got[1])
    np.testing.assert_allclose(got[[0, 2]], [0.02, 0.08])
    np.testing.assert_allclose(adjust(p, "none")[[0, 2]], [0.01, 0.04])
