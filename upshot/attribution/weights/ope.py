"""Off-policy evaluation: what would a candidate sending policy have achieved on logged data?

Each logged decision `i` has covariates `x_i`, a logged action `a_i` (sent or held out)
drawn with known propensity `p_i = P(a_i = 1 | x_i)`, and outcomes `y_i`. A deterministic
candidate policy `π` picks an action per decision. With `w_i = 1[a_i = π_i] / P(a_i | x_i)`:

- IPS:   `V = mean(w_i y_i)`, unbiased when the propensities are right;
- SNIPS: `V = Σ w_i y_i / Σ w_i`, slightly biased, much less variance;
- DR:    `V = mean(q(x_i, π_i) + w_i (y_i - q(x_i, a_i)))` with a cross-fitted outcome
  model `q`: unbiased if either the propensities or the model are right.

The logged policy's value is the plain mean of `y`. Every estimator is a mean of per-row
influence terms, so the CI of the candidate's value and of its difference from the logged
policy (paired on the same rows) both come from the sample variance of those terms.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from upshot.attribution.weights.combine import z_value
from upshot.results import ResultsMixin

if TYPE_CHECKING:
    import polars as pl

Policy = Literal["positive", "rank"]
ESTIMATORS = ("ips", "snips", "dr")


@dataclass(frozen=True, slots=True)
class PolicyEstimate:
    """One estimator's answer for one outcome (an objective, or `value` in value units).

    All values are means per logged decision, in the outcome's units. `effect` is the
    candidate's value minus the logged policy's, with a paired CI.
    """

    objective: str
    estimator: str
    policy_value: float
    policy_value_ci_lower: float
    policy_value_ci_upper: float
    logged_value: float
    effect: float
    effect_ci_lower: float
    effect_ci_upper: float
    rel_effect: float
    n: int
    status: str


@dataclass(frozen=True, slots=True)
class Evaluation(ResultsMixin):
    """The candidate policy against the logged one, per objective and in value.

    `share_sent_*` are the shares of decisions that send; `effective_n` is the Kish
    effective sample size of the importance weights (small: few decisions agree with π).
    `window` (`{"start", "end"}`, ISO instants) holds the decisions evaluated and `split`
    how they relate to the estimates: `next_window` (decisions the uplift did not use),
    `given` (a window the caller chose outside the estimates') or `in_sample` (overlapping
    them: optimistic). `status` is `ok`, or `not_evaluated` with no estimates and a `reason`.
    """

    estimates: tuple[PolicyEstimate, ...]
    policy: str
    cap: int | None
    n_decisions: int
    n_excluded: int
    n_unsupported: int
    share_sent_logged: float
    share_sent_candidate: float
    effective_n: float
    status: str = "ok"
    split: str = "in_sample"
    window: dict[str, str | None] | None = None
    reason: str | None = None

    @classmethod
    def not_evaluated(
        cls, policy: str, cap: int | None, split: str, window: dict[str, str | None], reason: str
    ) -> Evaluation:
        """No estimate: there were no decisions to evaluate on (`reason` says why)."""
        nan = math.nan
        return cls((), policy, cap, 0, 0, 0, nan, nan, 0.0, "not_evaluated", split, window, reason)

    def to_dicts(self) -> list[dict[str, object]]:
        from dataclasses import asdict

        return [asdict(e) for e in self.estimates]

    def summary(self) -> dict[str, object]:
        return {
            "status": self.status,
            "split": self.split,
            "window": self.window,
            "reason": self.reason,
            "policy": self.policy,
            "cap": self.cap,
            "n_decisions": self.n_decisions,
            "n_excluded": self.n_excluded,
            "n_unsupported": self.n_unsupported,
            "share_sent_logged": self.share_sent_logged,
            "share_sent_candidate": self.share_sent_candidate,
            "effective_n": self.effective_n,
        }


def candidate_actions(
    weights: np.ndarray,
    *,
    policy: Policy = "positive",
    cap: int | None = None,
    groups: np.ndarray | None = None,
    tiebreak: np.ndarray | None = None,
) -> np.ndarray:
    """The candidate's action per decision: send when the weight is positive, and under
    `rank` only the `cap` highest-weighted positive decisions of each group (user × week).
    Ties go to the smaller `tiebreak` (e.g. the class name), so the policy is deterministic.
    """
    weights = np.asarray(weights, dtype=float)
    send = np.nan_to_num(weights, nan=0.0) > 0
    if policy == "positive":
        return send
    if cap is None or cap < 1:
        raise ValueError(f"cap == {cap}, must be >= 1 under the rank policy")
    if groups is None:
        raise ValueError("the rank policy needs the group (user × week) of each decision")
    codes = np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
    ties = np.zeros(len(weights)) if tiebreak is None else np.asarray(tiebreak)
    ties = np.unique(ties, return_inverse=True)[1].ravel()
    order = np.lexsort((ties, -np.nan_to_num(weights, nan=-np.inf), codes))
    sorted_codes = codes[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_codes)) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - first
    return send & (rank < cap)


def importance_weights(
    treated: np.ndarray, propensity: np.ndarray, action: np.ndarray, clip: float = 0.0
) -> np.ndarray:
    """`1[a = π] / P(a | x)`, with the logged action's probability floored at `clip`."""
    treated = np.asarray(treated, dtype=bool)
    p = np.asarray(propensity, dtype=float)
    p_logged = np.where(treated, p, 1 - p)
    return np.where(treated == np.asarray(action, dtype=bool), 1 / np.maximum(p_logged, clip), 0.0)


def outcome_model(
    X: np.ndarray,
    Y: np.ndarray,
    treated: np.ndarray,
    groups: np.ndarray,
    *,
    rng: np.random.Generator,
    folds: int = 2,
    ridge: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fitted ridge predictions `(q1, q0)`, each n × m, of every outcome column of `Y`
    under sending and holding out, fitted per group (message class) and arm.

    A cell too small to fit a line falls back to its mean, and an empty one to the fold's.
    """
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float).reshape(len(X), -1)
    treated = np.asarray(treated, dtype=bool)
    scale = X.std(axis=0)
    Z = np.column_stack([np.ones(len(X)), (X - X.mean(axis=0)) / np.where(scale > 0, scale, 1)])
    fold = rng.integers(0, folds, size=len(X))
    q = {True: np.zeros_like(Y), False: np.zeros_like(Y)}
    for code in np.unique(groups):
        in_group = np.asarray(groups) == code
        for f in range(folds):
            test = in_group & (fold == f)
            train = in_group & (fold != f)
            if not test.any():
                continue
            for arm in (True, False):
                cell = train & (treated == arm)
                q[arm][test] = _fit_predict(Z[cell], Y[cell], Z[test], Y[train], ridge)
    return q[True], q[False]


def _fit_predict(
    Z: np.ndarray, Y: np.ndarray, Z_new: np.ndarray, fallback: np.ndarray, ridge: float
) -> np.ndarray:
    if len(Y) == 0:
        mean = fallback.mean(axis=0) if len(fallback) else np.zeros(Y.shape[1])
        return np.broadcast_to(mean, (len(Z_new), Y.shape[1]))
    if len(Y) < Z.shape[1] + 2:
        return np.broadcast_to(Y.mean(axis=0), (len(Z_new), Y.shape[1]))
    penalty = ridge * len(Y) * np.eye(Z.shape[1])
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    beta = np.linalg.solve(Z.T @ Z + penalty, Z.T @ Y)
    return Z_new @ beta


def estimate(
    Y: np.ndarray,
    treated: np.ndarray,
    propensity: np.ndarray,
    action: np.ndarray,
    *,
    q1: np.ndarray | None = None,
    q0: np.ndarray | None = None,
    names: Sequence[str] = (),
    alpha: float = 0.05,
    clip: float = 0.0,
) -> list[PolicyEstimate]:
    """IPS, SNIPS and (when `q1`, `q0` are given) DR estimates for each column of `Y`."""
    Y = np.asarray(Y, dtype=float)
    Y = Y.reshape(len(Y), -1)
    n, m = Y.shape
    names = list(names) or [f"y{j}" for j in range(m)]
    w = importance_weights(treated, propensity, action, clip)[:, None]
    act = np.asarray(action, dtype=bool)[:, None]
    logged = Y.mean(axis=0) if n else np.full(m, math.nan)
    terms: dict[str, np.ndarray] = {"ips": w * Y}
    w_mean = float(w.mean()) if n else 0.0
    snips = (w * Y).sum(axis=0) / w.sum() if w_mean > 0 else np.full(m, math.nan)
    terms["snips"] = w * (Y - snips) / w_mean + snips if w_mean > 0 else np.full_like(Y, math.nan)
    if q1 is not None and q0 is not None:
        tr = np.asarray(treated, dtype=bool)[:, None]
        q_pi = np.where(act, q1, q0)
        q_logged = np.where(tr, q1, q0)
        terms["dr"] = q_pi + w * (Y - q_logged)
    z = z_value(alpha)
    out = []
    for estimator, psi in terms.items():
        for j, name in enumerate(names):
            out.append(_summarise(name, estimator, psi[:, j], Y[:, j], logged[j], z))
    return out


def _summarise(
    name: str, estimator: str, psi: np.ndarray, y: np.ndarray, logged: float, z: float
) -> PolicyEstimate:
    n = len(psi)
    if n < 2 or not np.isfinite(psi).all():
        status = "insufficient_data" if n < 2 else "no_overlap"
        nan = math.nan
        return PolicyEstimate(name, estimator, nan, nan, nan, logged, nan, nan, nan, nan, n, status)
    value = float(psi.mean())
    se = float(psi.std(ddof=1) / math.sqrt(n))
    diff = psi - y
    effect = float(diff.mean())
    effect_se = float(diff.std(ddof=1) / math.sqrt(n))
    rel = effect / logged if logged != 0 else math.nan
    return PolicyEstimate(
        name,
        estimator,
        value,
        value - z * se,
        value + z * se,
        float(logged),
        effect,
        effect - z * effect_se,
        effect + z * effect_se,
        rel,
        n,
        "ok",
    )


def evaluate(
    frame: pl.DataFrame,
    weights: Mapping[str, float],
    rates: Mapping[str, Mapping[str, float]],
    *,
    policy: Policy = "positive",
    cap: int | None = None,
    alpha: float = 0.05,
    clip: float = 0.01,
    seed: int = 0,
) -> Evaluation:
    """Evaluate "send class c when `weights[c]` > 0" (or rank under `cap` per user × ISO week)
    on a decision frame (one row per logged decision, `upshot.attribution.uplift.frames`).

    `rates[channel][objective]` turns the objectives into value units per decision; the
    objectives evaluated are the rated ones present in `frame`. Classes without a weight and
    decisions without a logged propensity are left out (`n_excluded`). Every column that is
    neither a key nor an objective is a covariate of the outcome model (categoricals
    one-hot, as `frames.encode_covariates` does for the uplift models).
    """
    import polars as pl

    from upshot.attribution.uplift.frames import FRAME_KEYS, encode_covariates

    objectives = sorted({k for r in rates.values() for k in r if k in frame.columns})
    if not objectives:
        raise ValueError("the frame has none of the rated objectives as a column")
    kept = frame.filter(
        pl.col("message_class").is_in(list(weights)) & pl.col("propensity").is_not_null()
    ).sort("send_id")
    n_excluded = frame.height - kept.height
    treated = kept["treated"].to_numpy().astype(bool)
    propensity = kept["propensity"].to_numpy().astype(float)
    # integer codes, ordered like the names: numpy sorts object arrays very slowly
    classes = kept["message_class"].rank("dense").to_numpy()
    weight = kept["message_class"].replace_strict(dict(weights), return_dtype=pl.Float64).to_numpy()
    groups = None
    if policy == "rank":
        week = kept["decided_at"].dt.strftime("%G-W%V")
        groups = (kept["user_id"].cast(pl.String) + "|" + week).rank("dense").to_numpy()
    action = candidate_actions(weight, policy=policy, cap=cap, groups=groups, tiebreak=classes)
    outcomes = kept.select(objectives).fill_null(0.0)
    value = pl.sum_horizontal(
        pl.col(k)
        * pl.col("channel").replace_strict(
            {ch: r.get(k, 0.0) for ch, r in rates.items()}, default=0.0, return_dtype=pl.Float64
        )
        for k in objectives
    ).alias("__value__")
    Y = outcomes.with_columns(kept["channel"]).select(*objectives, value).to_numpy().astype(float)
    covariates = [c for c in kept.columns if c not in FRAME_KEYS and c not in objectives]
    X = encode_covariates(kept, covariates).X
    rng = np.random.default_rng(seed)
    q1, q0 = outcome_model(X, Y, treated, classes, rng=rng) if len(Y) else (None, None)
    w = importance_weights(treated, propensity, action, clip)
    p_candidate = np.where(action, propensity, 1 - propensity)
    # decisions the candidate would make that the logging policy (almost) never made
    unsupported = p_candidate < clip if clip > 0 else p_candidate <= 0
    names = [*objectives, "value"]
    return Evaluation(
        estimates=tuple(
            estimate(
                Y, treated, propensity, action, q1=q1, q0=q0, names=names, alpha=alpha, clip=clip
            )
        ),
        policy=policy,
        cap=cap if policy == "rank" else None,
        n_decisions=len(Y),
        n_excluded=n_excluded,
        n_unsupported=int(unsupported.sum()),
        share_sent_logged=float(treated.mean()) if len(Y) else math.nan,
        share_sent_candidate=float(action.mean()) if len(Y) else math.nan,
        effective_n=float(w.sum() ** 2 / (w @ w)) if len(Y) and (w @ w) > 0 else 0.0,
    )
