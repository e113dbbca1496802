"""Small seeded generators for experiment tests: unit-level arrays and their files."""

from __future__ import annotations

import numpy as np
import pytest

from upshot.experiments.stats import Moments


def two_arms(
    seed: int, n_c: int = 900, n_t: int = 1100, effect: float = 0.5
) -> dict[str, np.ndarray]:
    """A pre-period covariate x, a heteroskedastic outcome y, counts for a ratio, a 0/1."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for arm, n, shift in (("c", n_c, 0.0), ("t", n_t, effect)):
        x = rng.gamma(3.0, 4.0, n)
        z = rng.normal(0.0, 1.0, n)
        y = 5.0 + shift + 0.8 * x + 0.3 * z + rng.normal(0.0, 2.0 + shift, n)
        den = rng.poisson(4.0, n) + 1.0
        num = rng.binomial(den.astype(int), 0.3 + 0.02 * shift).astype(float)
        out[f"x_{arm}"], out[f"z_{arm}"], out[f"y_{arm}"] = x, z, y
        out[f"num_{arm}"], out[f"den_{arm}"] = num, den
        out[f"b_{arm}"] = (rng.random(n) < 0.1 + 0.02 * shift).astype(float)
    return out


def moments(d: dict[str, np.ndarray], arm: str, names: list[str]) -> Moments:
    return Moments.from_data(np.column_stack([d[f"{v}_{arm}"] for v in names]), names)


@pytest.fixture
def data() -> dict[str, np.ndarray]:
    return two_arms(11)


def rows_from(arms: dict[str, dict[str, np.ndarray]], binary: tuple[str, ...] = ()) -> list[dict]:
    """Query-shaped rows (naming-rule aggregates) computed in numpy, one per arm."""
    from upshot.experiments.stats import product_name, squares_name, sum_name

    rows = []
    for arm, cols in arms.items():
        names = list(cols)
        n = len(next(iter(cols.values()))) if cols else 0
        row: dict = {"variant": arm, "exclusion": "", "n": n}
        for i, a in enumerate(names):
            row[sum_name(a)] = float(np.nansum(cols[a]))
            row[squares_name(a)] = float(np.nansum(cols[a] ** 2))
            for b in names[i + 1 :]:
                row[product_name(a, b)] = float(np.nansum(cols[a] * cols[b]))
        for v in binary:
            row[f"{v}_min"], row[f"{v}_max"] = float(np.min(cols[v])), float(np.max(cols[v]))
        rows.append(row)
    return rows


@pytest.fixture(scope="session")
def sim_warehouse(tmp_path_factory):
    """A warehouse loaded through `upshot.load` from an `upshot.simulate` world, and its truth.

    The world's frames go to one Parquet file per table (one load transaction each, which
    keeps this to seconds); users, assignments and outcomes are all an analysis reads.
    """
    from upshot.config import Config
    from upshot.load import load
    from upshot.simulate import make_world

    root = tmp_path_factory.mktemp("sim")
    world = make_world(users=8000, weeks=4, seed=7)
    db = str(root / "upshot.duckdb")
    for table in ("users", "assignments", "outcomes"):
        path = root / f"{table}.parquet"
        getattr(world, table).write_parquet(path)
        load(db, table, [str(path)], config=Config())
    return db, world.truth
