"""Sufficient statistics: counts, sums and cross-products that add up across days or strata.

SQL fills them by one fixed column naming rule, so one query serves every metric:

    n                              units (users) in the group
    {v}_sum                        sum of variable v
    {v}_sum_squares                sum of v * v
    {a}_{b}_sum_product            sum of a * b, for a listed before b

`Moments` holds them for k variables, optionally batched: `n` has shape `batch`, `sums`
`batch + (k,)`, `products` `batch + (k, k)`, so simulations evaluate thousands of
experiments at once through the same arithmetic as a single analysis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from upshot.errors import UsageError


def sum_name(v: str) -> str:
    return f"{v}_sum"


def squares_name(v: str) -> str:
    return f"{v}_sum_squares"


def product_name(a: str, b: str) -> str:
    return f"{a}_{b}_sum_product"


def missing_name(v: str) -> str:
    """The 0/1 indicator that covariate v is missing (NULL or NaN), beside v filled with 0."""
    return f"{v}__missing"


def column_names(variables: Sequence[str]) -> list[str]:
    """The aggregate columns a query must return for `variables`, in a stable order."""
    names = ["n"]
    for i, a in enumerate(variables):
        names += [sum_name(a), squares_name(a)]
        names += [product_name(a, b) for b in variables[i + 1 :]]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise UsageError(f"variables {list(variables)} give the aggregate {name!r} twice")
        seen.add(name)
    return names


@dataclass(frozen=True, slots=True, eq=False)
class Moments:
    """Sufficient statistics of k variables (`names`) over `n` units.

    `sums[..., i]` is the sum of variable i, `products[..., i, j]` the sum of the product of
    variables i and j (symmetric). Means are per unit; `cov()` is the sample covariance.
    """

    names: tuple[str, ...]
    n: np.ndarray
    sums: np.ndarray
    products: np.ndarray

    def __add__(self, other: Moments) -> Moments:
        if self.names != other.names:
            raise ValueError(f"cannot pool moments of {self.names} with {other.names}")
        return Moments(
            self.names, self.n + other.n, self.sums + other.sums, self.products + other.products
        )

    @property
    def k(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def mean(self) -> np.ndarray:
        """Per-unit means, shape `batch + (k,)` (NaN for an empty group)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sums / np.asarray(self.n, dtype=float)[..., None]

    def cov(self) -> np.ndarray:
        """Sample covariance (n - 1 in the denominator), shape `batch + (k, k)`."""
        n = np.asarray(self.n, dtype=float)[..., None, None]
        outer = self.sums[..., :, None] * self.sums[..., None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            return (self.products - outer / n) / (n - 1)

    def select(self, names: Sequence[str]) -> Moments:
        """The moments of a subset (or reordering) of the variables."""
        idx = [self.index(v) for v in names]
        return Moments(
            tuple(names), self.n, self.sums[..., idx], self.products[..., idx, :][..., :, idx]
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any], names: Sequence[str], prefix: str = "") -> Moments:
        """Read the aggregate columns of one result row by the naming rule (NULL sums are 0),
        each name preceded by `prefix` (a metric's complete case, see `query.Case`).

        An empty `row` is an empty arm; a row lacking a needed column is a bug (KeyError).
        """
        k = len(names)
        sums = np.zeros(k)
        products = np.zeros((k, k))

        def get(*keys: str) -> float:
            if not row:
                return 0.0
            for key in keys:
                if prefix + key in row:
                    return _num(row[prefix + key])
            raise KeyError(f"the query returned no column {keys[0]!r}")

        for i, a in enumerate(names):
            sums[i] = get(sum_name(a))
            products[i, i] = get(squares_name(a))
            for j in range(i + 1, k):
                # the query names each pair once, in its own variable order
                value = get(product_name(a, names[j]), product_name(names[j], a))
                products[i, j] = products[j, i] = value
        return cls(tuple(names), np.asarray(get("n")), sums, products)

    @classmethod
    def from_data(cls, data: np.ndarray, names: Sequence[str]) -> Moments:
        """Moments of unit-level data, shape `batch + (units, k)`.

        NaN is missing, as NULL is in SQL: a unit with NaN in any variable is left out
        (complete case over the variables given), so `n` counts complete units.
        """
        x = np.asarray(data, dtype=float)
        complete = ~np.isnan(x).any(axis=-1)
        x = np.where(complete[..., None], x, 0.0)
        n = complete.sum(axis=-1).astype(float)
        return cls(
            tuple(names), n, x.sum(axis=-2), np.einsum("...ui,...uj->...ij", x, x, optimize=True)
        )

    @classmethod
    def empty(cls, names: Sequence[str]) -> Moments:
        k = len(names)
        return cls(tuple(names), np.asarray(0.0), np.zeros(k), np.zeros((k, k)))


def _num(value: Any) -> float:
    return 0.0 if value is None else float(value)
