"""Bias and coverage of the default uplift ATE in a targeted world (issue 13, item 6).

The world of tests/attribution/uplift/test_uplift_bias.py: decisions targeted on activity,
an effect that is not linear in it, no logged propensity (it is estimated). `--world
threshold` targets on a step in activity instead (a propensity a logistic fit misses).

    PYTHONPATH=$PWD python benchmarks/bias_uplift.py --rows 60000 --seeds 20
    PYTHONPATH=$PWD python benchmarks/bias_uplift.py --rows 20000 --seeds 20 --cap 5000

Prints the mean error, its Monte-Carlo SE (sd of the errors / sqrt(seeds)), the mean
error in SEs of the estimate, the CI coverage and the CPU seconds per fit.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import polars as pl

from upshot.attribution import estimate_uplift
from upshot.config import Uplift


def targeted_world(seed: int, n: int, world: str = "smooth") -> tuple[pl.DataFrame, float]:
    """The frame and the sample ATE (mean of the true individual effects)."""
    rng = np.random.default_rng(seed)
    activity = rng.normal(size=n)
    tenure = rng.uniform(0, 5, size=n)
    if world == "threshold":
        logit = np.where(activity > 0.5, 2.0, -1.0) + 0.8 * activity**2 * (activity < 0)
        p = 1 / (1 + np.exp(-(logit - 0.2 * tenure)))
    else:
        p = 1 / (1 + np.exp(-(1.2 * activity - 0.2 * tenure + 0.3)))
    T = (rng.random(n) < p).astype(np.int8)
    tau = 2 * np.exp(0.8 * activity) + 0.5 * (tenure > 2)
    y = 10 + 4 * activity + np.sin(2 * activity) + tenure + T * tau + rng.normal(0, 3, n)
    frame = pl.DataFrame(
        {"message_class": "c", "treated": T, "activity": activity, "tenure": tenure, "y": y}
    )
    return frame, float(tau.mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--cap", type=int, default=Uplift().nuisance_max_rows)
    parser.add_argument("--world", choices=("smooth", "threshold"), default="smooth")
    args = parser.parse_args()
    errors, z, covered, cpu = [], [], [], []
    for seed in range(args.seeds):
        frame, truth = targeted_world(seed, args.rows, args.world)
        settings = Uplift(segments=(), seed=seed, nuisance_max_rows=args.cap)
        started = time.process_time()
        results = estimate_uplift(
            frame, outcomes=["y"], covariates=["activity", "tenure"], propensity_col=None,
            settings=settings, refute=False,
        )  # fmt: skip
        cpu.append(time.process_time() - started)
        (e,) = results.estimates
        errors.append(e.ate - truth)
        z.append((e.ate - truth) / e.ate_se)
        covered.append(e.ate_ci_lower <= truth <= e.ate_ci_upper)
    err = np.array(errors)
    mc_se = err.std(ddof=1) / math.sqrt(len(err))
    print(
        f"world={args.world} rows={args.rows} cap={args.cap} seeds={args.seeds}: "
        f"bias {err.mean():+.4f}  MC SE {mc_se:.4f}  ({err.mean() / mc_se:+.1f} MC SEs)  "
        f"mean error/SE {np.mean(z):+.2f}  coverage {sum(covered)}/{len(covered)}  "
        f"CPU per fit {np.mean(cpu):.2f} s (median {np.median(cpu):.2f})"
    )


if __name__ == "__main__":
    main()
