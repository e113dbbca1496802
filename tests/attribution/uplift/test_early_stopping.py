"""The per-arm outcome models stop adding trees on the rows the nuisance cap left out.

Against known truth: with E[Y | x] known, the stopped models are at least as close to it
as the 100-tree ones (trees past the stopping point fit noise), and every prediction is
still out of fold (a test part's outcomes never move its own predictions).
"""

from __future__ import annotations

import numpy as np
import pytest

from upshot.attribution.uplift import nuisances
from upshot.attribution.uplift.econml_adapter import stratified_folds
from upshot.attribution.uplift.nuisances import arm_outcomes
from upshot.attribution.uplift.sampling import capped_folds, spare_rows, strata_codes


def _world(n: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    T = (rng.random(n) < 0.5).astype(np.int64)
    mean = np.column_stack(
        [1.0 + X[:, 0] + 0.5 * T, 1 / (1 + np.exp(-(-1.0 + 0.8 * X[:, 1] + 0.3 * T)))]
    )
    # a noisy numeric outcome and a 0/1 one: what the trees past the best one overfit
    Y = np.column_stack([mean[:, 0] + rng.normal(0, 3.0, n), rng.random(n) < mean[:, 1]])
    return X, T, Y.astype(float), mean


def test_stopped_models_are_as_close_to_the_truth_and_stay_out_of_fold():
    X, T, Y, mean = _world(24_000, seed=5)
    folds = stratified_folds(T, 3, 0)
    capped, _ = capped_folds(folds, strata_codes(T, None), 6_000, seed=0)
    spare = spare_rows(folds, capped, 4_000, seed=0)
    args = {"kind": "lightgbm", "seed": 0, "threads": 1}
    stopped = arm_outcomes(Y, [False, True], T, X, capped, spare=spare, **args)
    full = arm_outcomes(Y, [False, True], T, X, capped, **args)
    own = stopped[np.arange(len(T)), :, T]  # each row's prediction for its own arm
    own_full = full[np.arange(len(T)), :, T]
    for j in range(2):
        err_stopped = np.mean((own[:, j] - mean[:, j]) ** 2)
        err_full = np.mean((own_full[:, j] - mean[:, j]) ** 2)
        # 100 trees on 3,000 rows per arm with noise sd 3 overfit: stopping must not be worse
        assert err_stopped <= err_full, (j, err_stopped, err_full)
    # the larger step with a shorter patience (what saves the trees) fits about as well as
    # LightGBM's default step with 10 trees of patience: within 15% of its squared error
    # against the truth (0.99-1.10x over seeds 5-7; that error is ~3% of the noise
    # variance here, so 15% more of it adds < 0.5% to the doubly robust score's variance)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nuisances, "STOPPING_LEARNING_RATE", 0.1)
        mp.setattr(nuisances, "STOPPING_ROUNDS", 10)
        slow = arm_outcomes(Y, [False, True], T, X, capped, spare=spare, **args)
    own_slow = slow[np.arange(len(T)), :, T]
    for j in range(2):
        err_stopped = np.mean((own[:, j] - mean[:, j]) ** 2)
        err_slow = np.mean((own_slow[:, j] - mean[:, j]) ** 2)
        assert err_stopped <= 1.15 * err_slow, (j, err_stopped, err_slow)
    # out of fold: new outcomes on fold 0's test rows leave their predictions unchanged
    test0 = folds[0][1]
    moved = Y.copy()
    moved[test0] = np.random.default_rng(1).permutation(moved[test0])
    again = arm_outcomes(moved, [False, True], T, X, capped, spare=spare, **args)
    assert np.array_equal(again[test0], stopped[test0])
