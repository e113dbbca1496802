"""Shapley credits against brute force over every ordering of the channels.

`by_orderings` is the definition itself: the average, over all n! orders in which the
channels could join, of each channel's marginal contribution to the worth `v(S)` =
conversions of the journeys whose channels all lie in `S`. It shares no code with
`upshot.attribution.touches.shapley`, which uses the unanimity-game closed form instead.
"""

from __future__ import annotations

import math
from itertools import permutations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from upshot.attribution.touches.rules import path_table
from upshot.attribution.touches.shapley import shapley, shapley_by_coalitions
from upshot.errors import UsageError


def worth(rows, coalition):
    return sum(c for path, c in rows if set(path) <= coalition)


def by_orderings(rows, channels):
    totals = dict.fromkeys(channels, 0.0)
    for order in permutations(channels):
        joined: set[str] = set()
        for channel in order:
            before = worth(rows, joined)
            joined.add(channel)
            totals[channel] += worth(rows, joined) - before
    count = math.factorial(len(channels))
    return np.asarray([totals[c] / count for c in channels])


def random_rows(rng, channels, n_paths, max_len):
    rows = []
    for _ in range(n_paths):
        length = int(rng.integers(1, max_len + 1))
        rows.append((tuple(rng.choice(channels, size=length)), float(rng.integers(0, 5))))
    return rows


def table_of(rows, nulls=None):
    return path_table([p for p, _ in rows], [c for _, c in rows], nulls)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n_channels", [2, 3, 4, 5, 6])
def test_shapley_equals_brute_force_over_all_orderings(seed, n_channels):
    rng = np.random.default_rng(100 * n_channels + seed)
    channels = [f"c{i}" for i in range(n_channels)]
    rows = random_rows(rng, channels, n_paths=12, max_len=4)
    table = table_of(rows)
    expected = by_orderings(rows, table.channels)
    # both are sums of a few dozen small integers over n!: equal to rounding
    np.testing.assert_allclose(shapley(table).conversions, expected, atol=1e-9)
    np.testing.assert_allclose(shapley_by_coalitions(table), expected, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=5),
            st.integers(0, 20),
            st.integers(0, 20),
        ),
        min_size=1,
        max_size=15,
    )
)
def test_efficiency_and_the_textbook_formula_agree(rows):
    table = path_table([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    credits = shapley(table)
    assert credits.conversions.sum() == pytest.approx(table.total_conversions, abs=1e-9)
    assert credits.value.sum() == pytest.approx(table.total_value, abs=1e-9)
    np.testing.assert_allclose(credits.conversions, shapley_by_coalitions(table), atol=1e-9)


def test_axioms_symmetry_and_dummy():
    # a and b play identical roles; z appears only in non-converting journeys (a dummy)
    table = path_table(
        ["a > b", "b > a", "a > c", "b > c", "z > a"], [3, 3, 2, 2, 0], [1, 1, 1, 1, 9]
    )
    credits = dict(zip(shapley(table).channels, shapley(table).conversions, strict=True))
    assert credits["a"] == pytest.approx(credits["b"])
    assert credits["z"] == 0.0
    assert sum(credits.values()) == pytest.approx(10)


def test_many_channels_exact_agrees_with_permutation_sampling():
    # 20 channels: 20! orderings cannot be enumerated, but the closed form stays exact;
    # a seeded permutation-sampling estimate must land within its own 4.5 SE of it
    rng = np.random.default_rng(7)
    channels = [f"k{i:02d}" for i in range(20)]
    rows = random_rows(rng, channels, n_paths=60, max_len=5)
    table = table_of(rows)
    exact = shapley(table)
    assert exact.details == {"algorithm": "exact", "channels": 20, "standard_error": 0.0}
    sets = [(set(p), c) for p, c in rows]
    draws = np.zeros((3000, 20))
    index = {c: j for j, c in enumerate(table.channels)}
    for d in range(draws.shape[0]):
        order = {c: k for k, c in enumerate(rng.permutation(table.channels))}
        # a journey's worth arrives with the last of its channels to join
        for members, conversions in sets:
            draws[d, index[max(members, key=order.__getitem__)]] += conversions
    mean = draws.mean(axis=0)
    se = draws.std(axis=0, ddof=1) / math.sqrt(draws.shape[0])
    # 20 channels at 4.5 SE: P(any false alarm) < 20 * 7e-6
    assert np.all(np.abs(mean - exact.conversions) <= 4.5 * se + 1e-12)


def test_enumeration_refuses_more_than_twelve_channels():
    rows = [(tuple(f"c{i}" for i in range(13)), 1.0)]
    with pytest.raises(UsageError, match="channels == 13"):
        shapley_by_coalitions(table_of(rows))
