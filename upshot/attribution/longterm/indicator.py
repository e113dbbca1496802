"""`IndicatorSplines`: additive splines for the continuous columns, 0/1 columns as they are.

A one-hot covariate expanded into a cubic spline basis is seven columns that say what one
column says; on designs with many of them (the users' columns of the warehouse) that
multiplies the cost of every nuisance fit for nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import SplineTransformer


class IndicatorSplines(TransformerMixin, BaseEstimator):
    """Cubic splines (5 knots, linear extrapolation) of each column that is not 0/1 in
    the training rows, then the 0/1 columns unchanged."""

    def fit(self, x: np.ndarray, y: Any = None) -> IndicatorSplines:  # noqa: ARG002 (sklearn API)
        x = np.asarray(x, dtype=float)
        self.binary_ = np.all((x == 0) | (x == 1), axis=0)
        self.splines_ = None
        if not self.binary_.all():
            spline = SplineTransformer(n_knots=5, degree=3, extrapolation="linear")
            self.splines_ = spline.fit(x[:, ~self.binary_])
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        parts = [x[:, self.binary_]]
        if self.splines_ is not None:
            parts.append(self.splines_.transform(x[:, ~self.binary_]))
        return np.hstack(parts)
