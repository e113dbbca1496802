"""`IndicatorSplines` computes scikit-learn's spline basis in closed form: it must equal
`SplineTransformer(n_knots=5, degree=3, extrapolation="linear")` on the continuous
columns, inside the training range, at its ends and beyond them, with the 0/1 columns
passed through first."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.preprocessing import SplineTransformer

from upshot.attribution.longterm.indicator import IndicatorSplines


def _reference(train: np.ndarray, test: np.ndarray, binary: list[int]) -> np.ndarray:
    cont = [j for j in range(train.shape[1]) if j not in binary]
    spline = SplineTransformer(n_knots=5, degree=3, extrapolation="linear").fit(train[:, cont])
    return np.hstack([test[:, binary], spline.transform(test[:, cont])])


def test_equals_scikit_learn_inside_at_the_ends_and_beyond():
    rng = np.random.default_rng(0)
    n = 2000
    train = np.column_stack([
        rng.normal(size=n), rng.integers(0, 2, n), rng.exponential(size=n),
        rng.uniform(-3, 5, n), rng.integers(0, 2, n),
    ]).astype(float)  # fmt: skip
    test = np.vstack([train, rng.normal(scale=6, size=(3000, 5)), train.min(0), train.max(0)])
    test[:, [1, 4]] = rng.integers(0, 2, (test.shape[0], 2))
    ours = IndicatorSplines().fit(train).transform(test)
    ref = _reference(train, test, [1, 4])
    assert ours.shape == ref.shape == (test.shape[0], 2 + 3 * 7)
    # the same polynomials evaluated another way: equal to rounding (measured 9e-16
    # inside, extrapolated values grow with |x| so relative to 1 + |basis|)
    assert np.max(np.abs(ours - ref) / (1 + np.abs(ref))) < 1e-12


def test_a_constant_column_falls_back_to_scikit_learn():
    rng = np.random.default_rng(1)
    train = np.column_stack([rng.normal(size=50), np.full(50, 3.0)])
    test = np.column_stack([rng.normal(size=20), rng.normal(size=20)])
    ours = IndicatorSplines().fit(train).transform(test)
    np.testing.assert_allclose(ours, _reference(train, test, []), atol=1e-12)


def test_all_binary_and_no_columns():
    x = np.array([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    assert np.array_equal(IndicatorSplines().fit(x).transform(x), x)
    empty = np.empty((4, 0))
    assert IndicatorSplines().fit(empty).transform(empty).shape == (4, 0)


def test_non_finite_input_is_refused():
    x = np.array([[0.5], [np.nan], [2.0]])
    with pytest.raises(ValueError, match="NaN"):
        IndicatorSplines().fit(x)
