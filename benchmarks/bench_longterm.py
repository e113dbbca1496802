"""Long-term projection: upshot's shared path against the naive loop, one fit per class.

    python benchmarks/bench_longterm.py                                  # 1M history, 8 x 100k
    python benchmarks/bench_longterm.py --history 100000 --per-class 10000 --repeats 3

Both sides get the same synthetic data: a history (4 surrogates, 4 continuous and 4 binary
covariates, one long-term outcome Y = h(S, X) + noise with a nonlinear h) and 8 targeted
classes (logged propensity, each reaching a different slice of users, effects on the
surrogates known, so the true long-term effect is known), the same learners
(`indicator_learners`), 5 folds. The naive loop is what one writes without sharing: for
each class, the surrogate index on (history, class) — `surrogate_index_outcomes`, which
fits h on the history and P(history | S, X) on the pooled rows again for every class.
upshot runs `surrogate_index_classes`: h once, per class P(history | S, X) learned from
`--share-ratio` history rows per class row (`crossfit.fit_history_share`; 0: all of them),
per-class propensities and arm means. Each run is a fresh process (its peak RSS is its
own), the contenders interleaved; data generation is not timed. The script prints the
wall and CPU (user + sys) times (min, median), their ratio, the peak memory, the largest
gap between the two estimates in standard errors, and how many of the 8 CIs of each cover
the true effect.
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
EFFECTS = (0.3, 0.0, -0.2, 0.5, 0.1, -0.4, 0.2, 0.0)


def make_data(n_history: int, classes: int, per_class: int, seed: int):
    """History arrays, one (w, s, x, propensity) per class, and the true effects."""
    rng = np.random.default_rng(seed)

    def users(n: int, shift: float) -> np.ndarray:
        cont = rng.normal(loc=shift, size=(n, 4))
        binary = (rng.random((n, 4)) < 0.3 + 0.1 * np.tanh(cont[:, :4])).astype(float)
        return np.hstack([cont, binary])

    def surrogates(x: np.ndarray, w: np.ndarray, effect: float) -> np.ndarray:
        n = x.shape[0]
        return np.column_stack([
            x[:, 0] + effect * w + rng.normal(size=n),
            0.5 * x[:, 1] + 0.5 * effect * w + rng.normal(size=n),
            (rng.random(n) < 0.3 + 0.1 * np.tanh(x[:, 2] + effect * w)).astype(float),
            x[:, 4] + rng.normal(size=n),
        ])  # fmt: skip

    # h = E[Y | S, X]: linear in S1, S2 with slopes 2 and 1, so the true long-term
    # effect of a class is 2 * effect + 0.5 * effect + (effect on S3) * 1.5
    def outcome(s: np.ndarray, x: np.ndarray) -> np.ndarray:
        return 2 * s[:, 0] + s[:, 1] + 1.5 * s[:, 2] + 0.3 * s[:, 3] ** 2 + x[:, 1]

    x_h = users(n_history, 0.0)
    s_h = surrogates(x_h, np.zeros(n_history), 0.0)
    y_h = outcome(s_h, x_h) + rng.normal(size=n_history)
    exps, truth = [], []
    for c in range(classes):
        effect = EFFECTS[c % len(EFFECTS)]
        x = users(per_class, 0.1 * c)
        p = np.clip(1 / (1 + np.exp(-0.5 * x[:, 0])), 0.05, 0.95)
        w = (rng.random(per_class) < p).astype(float)
        s = surrogates(x, w, effect)
        exps.append((w, s, x, p))
        # effect on S3: E[0.1 (tanh(x2 + e) - tanh(x2))] at x2 ~ N(0.1 c, 1), by MC
        z = rng.normal(loc=0.1 * c, size=2_000_000)
        on_s3 = 0.1 * float(np.mean(np.tanh(z + effect) - np.tanh(z)))
        truth.append(2.5 * effect + 1.5 * on_s3)
    return s_h, x_h, y_h, exps, truth


def worker(kind: str, args: argparse.Namespace) -> None:
    from upshot.attribution.longterm.crossfit import SHARE_RATIO, indicator_learners
    from upshot.attribution.longterm.shared import ClassExperiment, surrogate_index_classes
    from upshot.attribution.longterm.surrogate import surrogate_index_outcomes

    s_h, x_h, y_h, exps, truth = make_data(args.history, args.classes, args.per_class, 0)
    learners = indicator_learners()
    start, cpu = time.perf_counter(), _cpu()
    if kind == "upshot":
        fits = surrogate_index_classes(
            s_h, x_h, y_h, [ClassExperiment(*e) for e in exps], learners=learners,
            history_share=args.share,
            share_ratio=SHARE_RATIO if args.share_ratio is None else args.share_ratio or None,
        )  # fmt: skip
        results = [f[0] for f in fits]
    else:
        results = [
            surrogate_index_outcomes(s_h, x_h, y_h, w, s, x, propensity=p, learners=learners)[0]
            for w, s, x, p in exps
        ]
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    peak_mb = _own_peak_mb()
    print(json.dumps({
        "seconds": seconds, "cpu": cpu, "peak_mb": peak_mb, "truth": truth,
        "estimates": [r.estimate for r in results], "se": [r.se for r in results],
    }))  # fmt: skip


def _cpu() -> float:
    """User + system CPU seconds of this process (its BLAS threads included)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _own_peak_mb() -> float:
    """This process's own peak RSS (VmHWM): ru_maxrss would carry the parent's through
    fork and exec. ru_maxrss where /proc is not there."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--per-class", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", choices=("upshot", "naive"))
    # the history share in upshot's path: one multinomial model, or one binary per class
    parser.add_argument("--share", choices=("multinomial", "binary"), default="binary")
    # history rows per class row the binary history share learns from (0: all; default
    # crossfit.SHARE_RATIO)
    parser.add_argument("--share-ratio", type=float, default=None)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args)
        return
    sizes = ["--history", str(args.history), "--classes", str(args.classes),
             "--per-class", str(args.per_class), "--share", args.share,
             *(["--share-ratio", str(args.share_ratio)] if args.share_ratio is not None else [])
             ]  # fmt: skip
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} on "
          f"{os.cpu_count()} CPUs (one BLAS thread per fit)")  # fmt: skip
    print(f"history {args.history:,} rows, {args.classes} classes x {args.per_class:,} "
          f"decisions, {args.repeats} interleaved runs each, history share {args.share}, "
          f"share ratio "
          f"{'default' if args.share_ratio is None else f'{args.share_ratio:g}'} "
          f"(0: all history rows)", flush=True)  # fmt: skip
    runs: dict[str, list[dict]] = {"upshot": [], "naive": []}
    for i in range(args.repeats):
        for kind in runs:
            out = subprocess.run(
                [sys.executable, __file__, "--worker", kind, *sizes],
                capture_output=True, text=True, check=True, cwd=ROOT,
                env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            )  # fmt: skip
            run = json.loads(out.stdout.strip().splitlines()[-1])
            runs[kind].append(run)
            print(f"  run {i + 1} {kind}: {run['seconds']:.1f} s wall, {run['cpu']:.1f} s CPU, "
                  f"{run['peak_mb']:.0f} MB, load {os.getloadavg()[0]:.2f}",
                  flush=True)  # fmt: skip
    for kind, rs in runs.items():
        t, c = [r["seconds"] for r in rs], [r["cpu"] for r in rs]
        r0 = rs[0]
        covered = sum(
            abs(e - tr) < 1.96 * se
            for e, tr, se in zip(r0["estimates"], r0["truth"], r0["se"], strict=True)
        )
        print(f"{kind}: wall min {min(t):.1f} s, median {float(np.median(t)):.1f} s; "
              f"CPU min {min(c):.1f} s, median {float(np.median(c)):.1f} s; "
              f"peak {max(r['peak_mb'] for r in rs):.0f} MB, "
              f"CIs covering the truth {covered}/{args.classes}")  # fmt: skip
    up, nv = runs["upshot"][0], runs["naive"][0]
    gap = max(abs(a - b) / s for a, b, s in zip(up["estimates"], nv["estimates"], nv["se"],
                                                   strict=True))  # fmt: skip
    for what in ("seconds", "cpu"):
        med = {k: float(np.median([r[what] for r in rs])) for k, rs in runs.items()}
        mins = {k: min(r[what] for r in rs) for k, rs in runs.items()}
        print(f"ratio naive/upshot ({'wall' if what == 'seconds' else 'CPU'}): "
              f"min {mins['naive'] / mins['upshot']:.2f}x, "
              f"median {med['naive'] / med['upshot']:.2f}x")  # fmt: skip
    print(f"largest estimate gap {gap:.3f} se; load average now "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")  # fmt: skip


if __name__ == "__main__":
    main()
