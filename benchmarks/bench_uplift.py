"""Uplift: upshot against the naive loop of one EconML LinearDML fit per class per objective.

    python benchmarks/bench_uplift.py                      # 8 classes x 4 objectives, 1M/class
    python benchmarks/bench_uplift.py --per-class 100000   # the smaller run
    python benchmarks/bench_uplift.py --classes 2 --repeats 2   # 1M/class, fewer classes

Each side is timed `--repeats` times (default 3), interleaved (upshot, naive, upshot,
naive, ...) so a change in a shared machine's load falls on both; the script prints the
min and median of each, the ratio of the minima and of the medians, and the load average
before and after.

Both sides get the same synthetic decisions (targeted sends with a logged propensity, 10
covariates of which 2 categorical, 2 binary and 2 continuous objectives, heterogeneous
effects whose mean is known exactly), the same encoded covariates, the same number of
cross-fitting folds and LightGBM nuisances with default hyperparameters, and the whole
machine: the baseline's LightGBM uses every core, upshot uses `--jobs` processes (give
it the number of cores). The baseline is what one would write by hand: for every class
and objective, `LinearDML(model_y=LGBM..., model_t=LGBMClassifier(),
discrete_treatment=True)`, binary objectives as discrete outcomes, then `ate_inference`.
upshot runs `estimate_uplift` (refutation and segments off: the baseline has neither).

Each side runs in its own process, so the peak resident memory of each is its own. The
script prints the wall-clock times and their ratio, the CPU time of each side (user + sys,
worker processes included), the peak memory, and how good the CIs
are: the share of the 32 class x objective CIs covering the true mean effect, and the
median ratio of upshot's CI width to the baseline's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OBJECTIVES = ("conversion", "opt_out", "minutes", "active_days")
BINARY = ("conversion", "opt_out")
NUMERIC = 8
CATEGORICAL = {"country": ("US", "GB", "DE", "BR", "IN"), "platform": ("ios", "android", "web")}


def make_data(classes: int, per_class: int, seed: int):
    """A flat decision table and the true mean effect per class and objective."""
    import polars as pl

    rng = np.random.default_rng(seed)
    frames, truth = [], {}
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    for c in range(classes):
        n = per_class
        X = rng.normal(size=(n, NUMERIC))
        cats = {k: rng.integers(0, len(v), size=n) for k, v in CATEGORICAL.items()}
        activity = X[:, 0] + 0.5 * X[:, 1]
        p = np.clip(sig(-0.3 + 0.9 * activity + 0.2 * (cats["platform"] == 0)), 0.05, 0.95)
        T = (rng.random(n) < p).astype(np.int8)
        scale = 0.5 + c / classes
        b_conv = -2.5 + 0.6 * activity + 0.3 * (cats["country"] == 0)
        l_conv = scale * (0.4 + 0.2 * (X[:, 2] > 0))
        b_opt = -4 + 0.2 * X[:, 3]
        l_opt = 0.3 * (c % 3)
        tau_min = scale * (5 + 3 * X[:, 2] + 2 * (cats["platform"] == 1))
        q0 = sig(-0.5 + 0.8 * activity)
        q1 = sig(-0.5 + 0.8 * activity + 0.2 * scale)
        u = rng.random((n, 2))
        data = {f"x{i}": X[:, i] for i in range(NUMERIC)}
        data |= {k: np.asarray(v)[cats[k]] for k, v in CATEGORICAL.items()}
        data |= {
            "message_class": np.full(n, f"class_{c}"),
            "treated": T,
            "propensity": p,
            "conversion": (u[:, 0] < sig(b_conv + T * l_conv)).astype(float),
            "opt_out": (u[:, 1] < sig(b_opt + T * l_opt)).astype(float),
            "minutes": 40 + 20 * activity + 5 * X[:, 4] + rng.normal(0, 30, n) + T * tau_min,
            "active_days": rng.binomial(7, np.where(T == 1, q1, q0)).astype(float),
        }
        frames.append(pl.DataFrame(data))
        truth[f"class_{c}"] = {
            "conversion": float(np.mean(sig(b_conv + l_conv) - sig(b_conv))),
            "opt_out": float(np.mean(sig(b_opt + l_opt) - sig(b_opt))),
            "minutes": float(np.mean(tau_min)),
            "active_days": float(np.mean(7 * (q1 - q0))),
        }
    return pl.concat(frames), truth


def covariates() -> list[str]:
    return [f"x{i}" for i in range(NUMERIC)] + list(CATEGORICAL)


def run_upshot(frame, folds: int, seed: int, jobs: int) -> dict:
    from upshot.attribution import estimate_uplift
    from upshot.config import Uplift

    settings = Uplift(nuisance="lightgbm", folds=folds, segments=(), seed=seed, jobs=jobs)
    results = estimate_uplift(
        frame, outcomes=OBJECTIVES, covariates=covariates(), binary=BINARY,
        channel_col=None, randomized_col=None, settings=settings, refute=False,
    )  # fmt: skip
    return {
        f"{e.message_class}/{e.objective}": [e.ate, e.ate_ci_lower, e.ate_ci_upper]
        for e in results.estimates
    }


def run_naive(frame, folds: int, seed: int, threads: int) -> dict:
    import polars as pl
    from econml.dml import LinearDML
    from lightgbm import LGBMClassifier, LGBMRegressor

    from upshot.attribution.uplift.frames import encode_covariates

    out = {}
    for name in sorted(frame["message_class"].unique()):
        part = frame.filter(pl.col("message_class") == name)
        X = encode_covariates(part, covariates()).X
        T = part["treated"].to_numpy()
        for objective in OBJECTIVES:
            binary = objective in BINARY
            lgbm = {"random_state": seed, "n_jobs": threads, "verbose": -1}
            est = LinearDML(
                model_y=LGBMClassifier(**lgbm) if binary else LGBMRegressor(**lgbm),
                model_t=LGBMClassifier(**lgbm),
                discrete_treatment=True,
                discrete_outcome=binary,
                cv=folds,
                random_state=seed,
            )
            est.fit(part[objective].to_numpy(), T, X=X)
            inference = est.ate_inference(X=X)
            lower, upper = inference.conf_int_mean(alpha=0.05)
            out[f"{name}/{objective}"] = [
                float(np.ravel(inference.mean_point)[0]),
                float(np.ravel(lower)[0]),
                float(np.ravel(upper)[0]),
            ]
    return out


def side(args: argparse.Namespace) -> None:
    """One side in this process: data, then the timed estimation; one JSON line out."""
    import warnings

    from upshot.attribution.uplift.backend import cpu_count

    warnings.simplefilter("ignore")
    frame, truth = make_data(args.classes, args.per_class, args.seed)
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    if args.side == "upshot":
        cells = run_upshot(frame, args.folds, args.seed, args.jobs)
    else:
        # LightGBM's own default: every core, OpenMP's default wait policy
        cells = run_naive(frame, args.folds, args.seed, cpu_count())
    seconds = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_before
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # with --jobs the fits run in worker processes: the largest one's peak, too
    worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    document = {"seconds": seconds, "cpu": cpu, "peak_mb": peak_mb, "worker_peak_mb": worker_mb}
    print(json.dumps({**document, "cells": cells, "truth": truth}))


def _cpu_seconds() -> float:
    """User + system CPU of this process and of its finished children (the --jobs workers):
    steadier than wall time on a shared machine. The naive loop's LightGBM threads spin
    while they wait (OpenMP's default), and that counts too."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def quality(cells: dict, truth: dict) -> tuple[float, list[float]]:
    covered, widths = [], []
    for key, (_, lower, upper) in cells.items():
        cls, objective = key.split("/")
        covered.append(lower <= truth[cls][objective] <= upper)
        widths.append(upper - lower)
    return float(np.mean(covered)), widths


def run_side(name: str, args: argparse.Namespace, repeat: int) -> dict:
    """One timed run of one side, in a fresh process (or its cached result)."""
    tag = (
        f"{name}-{args.classes}x{args.per_class}-f{args.folds}-j{args.jobs}-s{args.seed}-r{repeat}"
    )
    cached = args.cache / f"uplift-{tag}.json" if args.cache else None
    if cached and cached.exists():
        print(f"reusing {cached}", file=sys.stderr, flush=True)
        return json.loads(cached.read_text())
    cmd = [sys.executable, __file__, "--side", name, "--classes", str(args.classes),
           "--per-class", str(args.per_class), "--folds", str(args.folds),
           "--jobs", str(args.jobs), "--seed", str(args.seed)]  # fmt: skip
    print(f"run {repeat + 1}/{args.repeats}: {name} ...", file=sys.stderr, flush=True)
    # each side as a user would run it: upshot sets OMP_WAIT_POLICY=PASSIVE for itself,
    # the baseline keeps OpenMP's default (spinning threads: fastest on an idle machine,
    # so run this on one)
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  {result['seconds']:.1f} s", file=sys.stderr, flush=True)
    if cached:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(result))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--per-class", type=int, default=1_000_000)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1, help="upshot's --jobs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="Timed runs of each side, interleaved (upshot, naive, upshot, naive, ...).",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        help="Keep each side's result in this folder and reuse it when the same run is asked "
        "again (the 1M-per-class baseline takes long).",
    )
    parser.add_argument("--side", choices=("upshot", "naive"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        side(args)
        return
    load_before = os.getloadavg()
    runs: dict[str, list[dict]] = {"upshot": [], "naive": []}
    # interleaved, so a change in the machine's load falls on both sides alike
    for repeat in range(args.repeats):
        for name in ("upshot", "naive"):
            runs[name].append(run_side(name, args, repeat))
    load_after = os.getloadavg()
    ours, naive = runs["upshot"][0], runs["naive"][0]
    # the fits are seeded: every run of a side gives the same cells, the first speaks for all
    for name, found in runs.items():
        if any(r["cells"] != found[0]["cells"] for r in found[1:]):
            print(f"warning: the runs of {name} gave different estimates", file=sys.stderr)
    truth = ours["truth"]
    cover_ours, width_ours = quality(ours["cells"], truth)
    cover_naive, width_naive = quality(naive["cells"], truth)
    keys = sorted(naive["cells"])
    width_ratio = float(np.median([
        (ours["cells"][k][2] - ours["cells"][k][1]) / (naive["cells"][k][2] - naive["cells"][k][1])
        for k in keys
    ]))  # fmt: skip
    n = args.classes * args.per_class
    covs = NUMERIC + len(CATEGORICAL)
    secs = {k: [r["seconds"] for r in v] for k, v in runs.items()}
    cpu = {k: float(np.median([r.get("cpu", np.nan) for r in v])) for k, v in runs.items()}
    low = {k: min(v) for k, v in secs.items()}
    mid = {k: float(np.median(v)) for k, v in secs.items()}
    peak = {k: max(r["peak_mb"] for r in v) for k, v in runs.items()}
    workers = ""
    if args.jobs > 1:
        worker_mb = max(r.get("worker_peak_mb", 0) for r in runs["upshot"])
        workers = f" + {args.jobs} workers <= {worker_mb:.0f} MB each"
    lines = [
        (
            f"uplift: {args.classes} classes x {len(OBJECTIVES)} objectives, {args.per_class:,} "
            f"decisions per class ({n:,} total), {covs} covariates, {args.folds} folds, LightGBM "
            f"nuisances, upshot --jobs {args.jobs}, {args.repeats} interleaved runs each"
        ),
        (
            f"  load average before {load_before[0]:.2f} {load_before[1]:.2f} "
            f"{load_before[2]:.2f}, after {load_after[0]:.2f} {load_after[1]:.2f} "
            f"{load_after[2]:.2f} ({os.cpu_count()} CPUs)"
        ),
        (
            f"  upshot estimate_uplift  min {low['upshot']:7.1f} s  median {mid['upshot']:7.1f} s"
            f"   peak {peak['upshot']:6.0f} MB{workers}   CI coverage {cover_ours:.0%}"
        ),
        (
            f"  naive LinearDML loop    min {low['naive']:7.1f} s  median {mid['naive']:7.1f} s"
            f"   peak {peak['naive']:6.0f} MB   CI coverage {cover_naive:.0%}"
        ),
        (
            f"  CPU (user + sys, workers included), median: upshot {cpu['upshot']:.1f} s, "
            f"naive {cpu['naive']:.1f} s ({cpu['naive'] / cpu['upshot']:.1f}x)"
        ),
        "  runs (s): upshot "
        + ", ".join(f"{x:.1f}" for x in secs["upshot"])
        + "; naive "
        + ", ".join(f"{x:.1f}" for x in secs["naive"]),
        (
            f"  speed-up {low['naive'] / low['upshot']:.1f}x (minima), "
            f"{mid['naive'] / mid['upshot']:.1f}x (medians); median CI width upshot/naive "
            f"{width_ratio:.3f} (mean {np.mean(width_ours):.4g} vs {np.mean(width_naive):.4g})"
        ),
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
