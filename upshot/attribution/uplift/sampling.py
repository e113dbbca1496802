"""Seeded stratified row caps: what bounds the memory and time of one class's fit.

Two caps, both stratified on the design strata (treated × randomized):

- `max_rows_per_fit`: a class with more decisions is fitted on `stratified_rows` of them,
  drawn where the tasks are built, so a worker never receives more than the cap.
- `nuisance_max_rows`: each cross-fitting fold's nuisance models train on at most that
  many of the fold's training rows (`capped_folds`) and still predict every held-out row.
  EconML accepts folds whose training part is any subset disjoint from the test part.
  The training rows the cap leaves out (`spare_rows`) are still out of fold: LightGBM
  stops adding trees when its loss on a sample of them stops falling.

Proportional allocation keeps each stratum's share exact (largest remainders), so a
subsample keeps the class's treated share and its mix of randomized and targeted sends:
the ATE on it estimates the class's ATE without reweighting, every fold still holds both
arms, and a uniform draw's chance imbalance between holdout and targeted rows is gone.
Each cap is recorded (`sampling_record`) in the details of every estimate it shaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

STRATA = ("treated", "randomized")


def strata_codes(T: np.ndarray, randomized: np.ndarray | None) -> np.ndarray:
    """The stratum of each row: treated (0/1) + 2 × randomized (0/1); (n,) int8."""
    codes = np.asarray(T, dtype=np.int8).copy()
    if randomized is not None:
        codes += 2 * np.asarray(randomized, dtype=np.int8)
    return codes


def allocate(counts: np.ndarray, size: int) -> np.ndarray:
    """Rows to draw from each stratum: `size` split in proportion to `counts`, the
    remainder going to the largest fractional parts (ties to the lower stratum)."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if size >= total:
        return counts.copy()
    exact = counts * size / total
    take = np.floor(exact).astype(np.int64)
    short = size - int(take.sum())
    order = np.argsort(-(exact - take), kind="stable")
    take[order[:short]] += 1
    return take


def stratified_rows(strata: np.ndarray, size: int, seed: int) -> np.ndarray | None:
    """Sorted indices of a proportional stratified sample of `size` rows; None when there
    are no more than `size` rows (use them all)."""
    n = len(strata)
    if size <= 0 or n <= size:
        return None
    levels, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
    take = allocate(counts, size)
    rng = np.random.default_rng(seed)
    order = np.argsort(inverse, kind="stable")  # rows grouped by stratum, in row order
    bounds = np.concatenate([[0], np.cumsum(counts)])
    picked = [
        rng.choice(order[bounds[k] : bounds[k + 1]], size=int(take[k]), replace=False)
        for k in range(len(levels))
    ]
    return np.sort(np.concatenate(picked))


def capped_folds(
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    strata: np.ndarray,
    max_rows: int,
    seed: int,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    """`folds` with each training part cut to a stratified sample of at most `max_rows`
    rows (0: no cap), and the record of it; the test parts are unchanged, so every row is
    still predicted out of fold."""
    out = []
    for k, (train, test) in enumerate(folds):
        rows = stratified_rows(strata[train], max_rows, seed + k)
        out.append((train if rows is None else train[rows], test))
    capped = any(len(a) < len(b) for (a, _), (b, _) in zip(out, folds, strict=True))
    record = {
        "scheme": "stratified" if capped else "all",
        "strata": list(STRATA),
        "max_rows": max_rows,
        "train_rows": [len(train) for train, _ in out],
        "of": [len(train) for train, _ in folds],
        "seed": seed,
    }
    return out, record


def spare_rows(
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    capped: Sequence[tuple[np.ndarray, np.ndarray]],
    max_rows: int,
    seed: int,
) -> list[np.ndarray]:
    """Per fold, a seeded sample of at most `max_rows` of the training rows that the cap
    left out (sorted; empty when nothing was left out): held out from the nuisance fits
    and from the fold's test part, so a loss measured on them is an honest stopping rule."""
    out = []
    for k, ((whole, _), (kept, _)) in enumerate(zip(folds, capped, strict=True)):
        left = np.setdiff1d(whole, kept, assume_unique=True)
        if len(left) > max_rows:
            rng = np.random.default_rng(seed + 7919 * (k + 1))
            left = np.sort(rng.choice(left, size=max_rows, replace=False))
        out.append(left)
    return out


def sampling_record(strata: np.ndarray, rows: np.ndarray | None, seed: int) -> dict[str, Any]:
    """How a set of rows was drawn from `strata`: the provenance stored with an estimate.

    `{"scheme": "all" | "stratified", "strata": [...], "rows": k, "of": n, "seed": s,
    "counts": {"<treated>,<randomized>": [drawn, available], ...}}`.
    """
    levels, counts = np.unique(strata, return_counts=True)
    drawn = counts if rows is None else np.array([int(np.sum(strata[rows] == v)) for v in levels])
    return {
        "scheme": "all" if rows is None else "stratified",
        "strata": list(STRATA),
        "rows": int(len(strata) if rows is None else len(rows)),
        "of": len(strata),
        "seed": seed,
        "counts": {
            f"{int(v) & 1},{int(v) >> 1}": [int(d), int(c)]
            for v, d, c in zip(levels, drawn, counts, strict=True)
        },
    }
