"""The cross-fitted propensity of a targeted class without a logged one (LightGBM nuisances).

A logistic regression on the covariates is the starting point (LightGBM's `init_score`),
and boosted trees add what it misses (a threshold, an interaction) only while their log
loss on held-out training rows keeps falling. Each fold's model never sees its test part.

Why not 100 trees from scratch (what the nuisances did before, issue 13 item 6): in a
targeted world the doubly robust score divides by p̂, and a 100-tree model's p̂ in the
sparse tails is an average of a few dozen rows, so 1/p̂ is noisy and (Jensen) too large
on average there; where the tree outcome models are also off (they flatten the tails),
the product of the two errors biased the ATE: −0.040 at 60k decisions (5.3 Monte-Carlo
SEs, −0.94 SE; tests/attribution/uplift/test_uplift_bias.py's world), −0.15 at 20k with
a 5k cap. Stopping the trees from scratch under-fits the other way (+0.018, 2.7 MC SEs).
Starting from the logistic fit and stopping, with outcome models that start from least
squares (`nuisances._lightgbm_arms`): −0.005 (0.7 MC SE) and +0.015 (1.1 MC SEs); with
targeting on a step in activity that the logistic fit misses, +0.001 (0.1 MC SE) at 60k
(`benchmarks/bias_uplift.py --world threshold`; the outcome models from scratch: −0.029).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# held-out share of a fold's training rows when the nuisance cap left none out
VALID_SHARE = 0.2
MIN_VALID_ROWS = 200  # fewer held-out rows: too noisy a stopping rule, no trees are added
STOPPING_ROUNDS = 5  # trees added without a better held-out log loss before stopping
MAX_TREES = 100


def boosted_propensity(
    T: np.ndarray,
    X: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    spare: Sequence[np.ndarray] | None,
    *,
    seed: int,
    threads: int,
) -> np.ndarray:
    """P(T = 1 | x) of every row, (n,), each test part from its fold's training part.

    The held-out rows that stop the trees are the fold's `spare` rows (training rows the
    nuisance cap left out, `sampling.spare_rows`) when there are enough, otherwise a
    seeded `VALID_SHARE` of the training part (then not used to fit).
    """
    import lightgbm as lgb

    from upshot.attribution.uplift.nuisances import _lgbm_params, logistic_start

    params = {**_lgbm_params(seed), "objective": "binary"}
    out = np.empty(len(T))
    for k, (train, test) in enumerate(folds):
        held = spare[k] if spare is not None else np.empty(0, dtype=np.int64)
        fit = train
        if len(held) < MIN_VALID_ROWS:
            rng = np.random.default_rng(seed + 104_729 * (k + 1))
            inner = rng.random(len(train)) < VALID_SHARE
            held, fit = train[inner], train[~inner]
        logistic = logistic_start().fit(X[fit], T[fit])

        def logit(rows: np.ndarray, model=logistic) -> np.ndarray:
            return np.asarray(model.decision_function(X[rows]), dtype=np.float64)

        raw = logit(test)
        if len(held) >= MIN_VALID_ROWS and np.ptp(T[held]) > 0 and np.ptp(T[fit]) > 0:
            data = lgb.Dataset(X[fit], label=T[fit], init_score=logit(fit), params=params)
            valid = lgb.Dataset(X[held], label=T[held], init_score=logit(held), reference=data)
            stop = lgb.early_stopping(STOPPING_ROUNDS, first_metric_only=True, verbose=False)
            booster = lgb.train(
                params, data, num_boost_round=MAX_TREES, valid_sets=[valid], callbacks=[stop]
            )
            # the trees' raw scores add to the logistic fit's log-odds (init_score)
            raw = raw + booster.predict(X[test], raw_score=True, num_threads=threads)
        out[test] = 1 / (1 + np.exp(-raw))
    return out
