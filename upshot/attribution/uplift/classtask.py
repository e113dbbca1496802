"""What one message class's fit receives: its rows as plain arrays, and about all its rows.

`ClassTask` is built where the frame is split by class (`estimate._tasks`) and shipped to a
worker (a local process or a Ray task), so it holds only picklable arrays. A class larger
than `max_rows_per_fit` is cut to a stratified sample (`sample_class`) before its
covariates are encoded; the counts and naive effects reported for it are still those of
every decision (`population`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from upshot.attribution.uplift.sampling import sampling_record, strata_codes, stratified_rows

if TYPE_CHECKING:
    from upshot.attribution.uplift.results import UpliftCovariance, UpliftEstimate
    from upshot.config import Uplift


@dataclass(frozen=True, slots=True)
class Segment:
    """A segment column over a class's rows: `codes` (n,) index `levels`."""

    column: str
    codes: np.ndarray
    levels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CellCounts:
    """A cell over ALL of a class's decisions (not only those fitted): its arms and, per
    objective, the naive difference of means (sent − held out; NaN without both arms)."""

    n_treated: int
    n_control: int
    naive: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ClassTask:
    """Everything one class's fit needs, as plain arrays (picklable for worker processes).

    The arrays hold the rows to fit (all the class's decisions, or the `sample_class`
    sample of them): `T` (n,) 0/1; `Y` (n, m) one column per objective; `X` (n, k) the
    design matrix; `logged` (n,) the logged propensity (NaN where missing) or None;
    `randomized` (n,) bool or None. `population` maps each cell label ("all",
    "<column>=<level>") to its whole-class `CellCounts`; `sampling` records how the rows
    were drawn (`sampling.sampling_record`). `pre_period` says whether `X` holds a
    pre-period behaviour covariate that varies (None: not known, e.g. a flat table).
    """

    message_class: str
    channel: str | None
    T: np.ndarray
    Y: np.ndarray
    X: np.ndarray
    logged: np.ndarray | None
    randomized: np.ndarray | None
    objectives: tuple[str, ...]
    binary: tuple[bool, ...]
    segments: tuple[Segment, ...]
    settings: Uplift
    population: dict[str, CellCounts]
    sampling: dict[str, Any]
    refute: bool = True
    threads: int = 1
    pre_period: bool | None = None

    @property
    def n(self) -> int:
        """Decisions of the whole class (fitted or not)."""
        whole = self.population["all"]
        return whole.n_treated + whole.n_control


@dataclass(frozen=True, slots=True)
class ClassOutcome:
    """What one class's fit returns: its estimates, covariances and diagnostics (defined
    here, not with the fitting code, so that the driver unpickles it without loading that)."""

    estimates: tuple[UpliftEstimate, ...]
    covariance: tuple[UpliftCovariance, ...]
    diagnostics: dict[str, Any]


def population(T: np.ndarray, Y: np.ndarray, segments: Sequence[Segment]) -> dict[str, CellCounts]:
    """Whole-class `CellCounts` of "all" and of every segment level: `T` (n,), `Y` (n, m)."""
    t = np.asarray(T, dtype=np.int64)
    groups: list[tuple[str, np.ndarray, tuple[str, ...]]] = [
        ("all", np.zeros(len(t), dtype=np.int64), ("",))
    ]
    groups += [(s.column, np.asarray(s.codes, dtype=np.int64), s.levels) for s in segments]
    out: dict[str, CellCounts] = {}
    for column, codes, levels in groups:
        # one pass per group: cell × arm counts and sums of every objective
        key = 2 * codes + t
        size = 2 * len(levels)
        counts = np.bincount(key, minlength=size).reshape(-1, 2)
        sums = np.stack(
            [np.bincount(key, weights=Y[:, j], minlength=size) for j in range(Y.shape[1])]
        ).reshape(Y.shape[1], -1, 2)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / counts  # (m, levels, arm); NaN where an arm is empty
        for code, level in enumerate(levels):
            naive = tuple(float(means[j, code, 1] - means[j, code, 0]) for j in range(Y.shape[1]))
            label = "all" if column == "all" else f"{column}={level}"
            out[label] = CellCounts(int(counts[code, 1]), int(counts[code, 0]), naive)
    return out


def sample_class(
    T: np.ndarray, randomized: np.ndarray | None, settings: Uplift
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """The rows of a class to fit (None: all) and their record: a stratified sample of
    `max_rows_per_fit` when the class is larger (see `sampling.py`)."""
    strata = strata_codes(T, randomized)
    rows = stratified_rows(strata, settings.max_rows_per_fit, settings.seed)
    return rows, sampling_record(strata, rows, settings.seed)
