"""`IndicatorSplines`: additive splines for the continuous columns, 0/1 columns as they are.

A one-hot covariate expanded into a cubic spline basis is seven columns that say what one
column says; on designs with many of them (the users' columns of the warehouse) that
multiplies the cost of every nuisance fit for nothing.

The basis is scikit-learn's `SplineTransformer(n_knots=5, degree=3,
extrapolation="linear")` (uniform knots over the training range), computed here in closed
form: on uniform knots every cubic B-spline is a translate of one piecewise cubic, so the
four bases that are not zero at x are four polynomials in x's position inside its knot
interval. One vectorized pass over all columns instead of scikit-learn's per-column spline
evaluation and masked assignments, which were the largest cost of the long-term nuisance
fits (every fit transforms its training rows and every prediction its rows). Equal to
`SplineTransformer` to rounding (tests/attribution/longterm/test_indicator.py); a column
constant in the training rows falls back to it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import SplineTransformer

N_KNOTS = 5
DEGREE = 3
N_BASES = N_KNOTS + DEGREE - 1  # 7 per continuous column
INTERVALS = N_KNOTS - 1


class IndicatorSplines(TransformerMixin, BaseEstimator):
    """Cubic splines (5 knots, linear extrapolation) of each column that is not 0/1 in
    the training rows, then the 0/1 columns unchanged."""

    def fit(self, x: np.ndarray, y: Any = None) -> IndicatorSplines:  # noqa: ARG002 (sklearn API)
        x = np.asarray(x, dtype=float)
        if not np.isfinite(x).all():
            raise ValueError("IndicatorSplines: the input contains NaN or infinity")
        self.binary_ = np.all((x == 0) | (x == 1), axis=0)
        self.splines_ = None
        self.lo_ = self.step_ = np.empty(0)
        cont = x[:, ~self.binary_]
        if cont.shape[1]:
            lo, hi = cont.min(axis=0), cont.max(axis=0)
            if np.all(hi > lo):
                self.lo_, self.step_ = lo, (hi - lo) / INTERVALS
            else:  # a constant column: scikit-learn's degenerate knots
                spline = SplineTransformer(n_knots=N_KNOTS, degree=DEGREE, extrapolation="linear")
                self.splines_ = spline.fit(cont)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        n_bin = int(self.binary_.sum())
        cont = x[:, ~self.binary_]
        out = np.zeros((x.shape[0], n_bin + N_BASES * cont.shape[1]))
        out[:, :n_bin] = x[:, self.binary_]
        if self.splines_ is not None:
            out[:, n_bin:] = self.splines_.transform(cont)
        elif cont.shape[1]:
            if not np.isfinite(cont).all():
                raise ValueError("IndicatorSplines: the input contains NaN or infinity")
            out[:, n_bin:] = _bases(cont, self.lo_, self.step_).reshape(x.shape[0], -1)
        return out


def _bases(x: np.ndarray, lo: np.ndarray, step: np.ndarray) -> np.ndarray:
    """(n, c, 7): the cubic B-spline bases of each column on uniform knots lo + k step
    (k = -3 .. 7), continued linearly beyond [lo, lo + 4 step] as scikit-learn does (the
    three bases that are not zero at the boundary, with their slope there)."""
    t = (x - lo) / step  # position in knot intervals, [0, 4] inside the range
    i = np.minimum(np.floor(np.clip(t, 0, INTERVALS)), INTERVALS - 1)
    u = np.clip(t, 0, INTERVALS) - i  # in [0, 1]: where x is inside its knot interval
    u2 = u * u
    u3 = u2 * u
    v = 1 - u
    out = np.zeros((*x.shape, N_BASES))
    flat = out.reshape(-1)
    # the four bases i .. i + 3 not zero on interval i: the uniform cubic B-spline's pieces
    first = np.arange(x.size) * N_BASES + i.astype(np.intp).reshape(-1)
    flat[first] = (v * v * v / 6).reshape(-1)
    flat[first + 1] = ((3 * u3 - 6 * u2 + 4) / 6).reshape(-1)
    flat[first + 2] = ((-3 * u3 + 3 * u2 + 3 * u + 1) / 6).reshape(-1)
    flat[first + 3] = (u3 / 6).reshape(-1)
    # linear continuation: at either boundary the three bases that are not zero there are
    # (1/6, 2/3, 1/6) with slopes (-1/2, 0, 1/2) per knot interval
    # (only the rows beyond the range, usually few)
    rows, cols = np.nonzero(t < 0)
    beyond = t[rows, cols] / 2
    out[rows, cols, 0] -= beyond
    out[rows, cols, 2] += beyond
    rows, cols = np.nonzero(t > INTERVALS)
    beyond = (t[rows, cols] - INTERVALS) / 2
    out[rows, cols, N_BASES - 3] -= beyond
    out[rows, cols, N_BASES - 1] += beyond
    return out
