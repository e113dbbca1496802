"""The surrogate index: a long-term effect from short-term outcomes, with honest errors.

Athey, Chetty, Imbens & Kang (2019) learn h(S, X) = E[Y_long | S, X] on a *history*
(G = 1: surrogates S, covariates X and the long-term outcome Y observed) and read the
long-term effect of a treatment W off its effect on h in an *experiment* (G = 0: W, S, X
observed, Y not yet). Chen & Ritzwoller (2023, "Semiparametric estimation of long-term
treatment effects", J. Econometrics 237) give the efficient influence function; with

    nu(s, x)  = E[Y | S, X, G = 1]                 (h, learned on the history)
    mu_w(x)   = E[nu(S, X) | W = w, X, G = 0]      (the arm means of h)
    rho(x)    = P(W = 1 | X, G = 0),   rho(s, x) = P(W = 1 | S, X, G = 0)
    gamma(s, x) = P(G = 1 | S, X) on the pooled rows

the estimate is the mean over experiment units of the doubly robust score

    A = W (nu - mu_1) / rho(x) - (1 - W)(nu - mu_0) / (1 - rho(x)) + mu_1 - mu_0

plus the correction for the error of h, summed over history units and divided by n_e:

    B = (1 - gamma)/gamma * (rho(s, x) - rho(x)) / (rho(x)(1 - rho(x))) * (Y - nu).

B is not zero in a randomized experiment: rho(s, x) differs from rho(x) whenever the
treatment moves the surrogates, and B carries the error of h into the standard error,
se^2 = var_e(A)/n_e + n_h var_h(B)/n_e^2 (the sizes of both samples held fixed). Every
nuisance is cross-fitted (`crossfit`). The arithmetic is the one of the `surrogate-index`
package (its `eif.py`), which the tests use as the reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from upshot.attribution.longterm.crossfit import (
    CLIP,
    Learners,
    crossfit,
    default_learners,
    fold_ids,
)

METHOD = "surrogate_index_eif"


@dataclass(frozen=True, slots=True)
class ShortTermEffect:
    """The doubly robust effect of the treatment on one surrogate in the experiment, in
    the surrogate's own units, with its CI at level 1 - alpha."""

    surrogate: str
    effect: float
    se: float
    ci_lower: float
    ci_upper: float


@dataclass(frozen=True, slots=True)
class SurrogateEstimate:
    """The projected long-term effect of the treatment, in the units of Y_long.

    `se` includes the error of h (Chen & Ritzwoller); `se_h_known` is what a method that
    treats h as known would report, kept so the difference can be seen. `short_term`
    holds one effect per surrogate, in the order given.
    """

    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    n_history: int
    n_experiment: int
    short_term: tuple[ShortTermEffect, ...]
    method: str
    se_h_known: float
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of `upshot longterm --json`."""
        return {
            "estimate": self.estimate,
            "se": self.se,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
            "n_history": self.n_history,
            "n_experiment": self.n_experiment,
            "short_term": {
                s.surrogate: {"effect": s.effect, "ci_lower": s.ci_lower, "ci_upper": s.ci_upper}
                for s in self.short_term
            },
            "method": self.method,
        }


@dataclass(frozen=True, slots=True)
class Nuisances:
    """Cross-fitted predictions on the pooled rows (experiment first, then history):
    `nu`, `rho_x`, `rho_sx`, `gamma` have one value per pooled row; `mu1` and `mu0` have
    shape (n_e, m), one column per target (h first, then each extra target)."""

    nu: np.ndarray
    rho_x: np.ndarray
    rho_sx: np.ndarray
    gamma: np.ndarray
    mu1: np.ndarray
    mu0: np.ndarray


@dataclass(frozen=True, slots=True)
class FoldPlan:
    """Fold labels per nuisance, one per training row in row order: experiment rows for
    the propensities P(W | X) (`propensity`) and P(W | S, X) (`propensity_sx`) and the
    arm means (`arms`, restricted to each arm), history rows for h (`history`), all rows
    for P(history | S, X) (`pooled`). One partition serves all of them by default; the
    fields are apart so a test can replay another implementation's folds."""

    propensity: np.ndarray
    propensity_sx: np.ndarray
    arms: np.ndarray
    history: np.ndarray
    pooled: np.ndarray

    @classmethod
    def shared(cls, n_e: int, n_h: int, n_folds: int, rng: np.random.Generator) -> FoldPlan:
        fe, fh = fold_ids(n_e, n_folds, rng), fold_ids(n_h, n_folds, rng)
        return cls(fe, fe, fe, fh, np.concatenate([fe, fh]))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, CLIP, 1 - CLIP)
    return np.log(p / (1 - p))


def fit_nuisances(
    w: np.ndarray,
    s: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    n_e: int,
    plan: FoldPlan,
    learners: Learners,
    *,
    propensity: np.ndarray | None = None,
    extra_targets: np.ndarray | None = None,
    nu: np.ndarray | None = None,
    gamma: np.ndarray | None = None,
) -> Nuisances:
    """Fit every nuisance on pooled arrays: `s` (n, k) and `x` (n, p) for the n_e
    experiment rows then the history rows; `w` (n_e,) is the treatment, `y` (n,) is read
    on history rows only; `y` (n, m) fits m outcomes at once, all but h shared (then `nu`
    is (n, m) and the first m columns of `mu1`, `mu0` are its arm means). `propensity`
    (n_e,) is the known P(W = 1 | X) when given. `extra_targets` (n_e, j) get arm means
    too (the surrogates, a realized outcome). `nu` and `gamma` (one row per pooled row),
    when given, are taken as fitted (`shared.surrogate_index_classes` fits them once for
    many experiments on the same history)."""
    n = s.shape[0]
    exp = np.arange(n) < n_e
    sx = np.hstack([s, x])
    reg, clf = learners.regressor, learners.classifier
    w_all = np.concatenate([w, np.zeros(n - n_e)])
    rows = exp if y.ndim == 1 else exp[:, None]
    if nu is None:
        nu = crossfit(reg, sx, np.where(rows, 0.0, y), ~exp, plan.history, classifier=False)
    if propensity is None:
        rho_x = crossfit(clf, x, w_all, exp, plan.propensity, classifier=True)
        rho_sx = crossfit(clf, sx, w_all, exp, plan.propensity_sx, classifier=True)
    else:
        # history rows have no logged propensity: predict its logit from X
        lp = np.pad(_logit(propensity), (0, n - n_e))
        lp_hat = crossfit(reg, x, lp, exp, plan.propensity, classifier=False)
        lp = np.where(exp, lp, lp_hat)
        rho_x = 1 / (1 + np.exp(-lp))
        sxp = np.hstack([sx, lp[:, None]])
        rho_sx = crossfit(clf, sxp, w_all, exp, plan.propensity_sx, classifier=True)
    if gamma is None:
        pooled = np.ones(n, bool)
        gamma = crossfit(clf, sx, (~exp).astype(float), pooled, plan.pooled, classifier=True)
    targets = nu[:n_e].reshape(n_e, -1)
    if extra_targets is not None:
        targets = np.hstack([targets, extra_targets.reshape(n_e, -1)])
    mus = []
    for arm in (1, 0):
        train = w == arm
        mus.append(crossfit(reg, x[:n_e], targets, train, plan.arms[train], classifier=False))
    clip = (CLIP, 1 - CLIP)
    return Nuisances(
        nu=nu,
        rho_x=np.clip(rho_x, *clip),
        rho_sx=np.clip(rho_sx, *clip),
        gamma=np.clip(gamma, *clip),
        mu1=mus[0],
        mu0=mus[1],
    )


def aipw_scores(
    w: np.ndarray, outcome: np.ndarray, mu1: np.ndarray, mu0: np.ndarray, rho: np.ndarray
) -> np.ndarray:
    """The doubly robust (AIPW) score per experiment unit; its mean is the effect.
    `outcome`, `mu1`, `mu0` may be (n_e,) or (n_e, m) for m outcomes at once."""
    if outcome.ndim == 2:
        w, rho = w[:, None], rho[:, None]
    return w * (outcome - mu1) / rho - (1 - w) * (outcome - mu0) / (1 - rho) + mu1 - mu0


def history_scores(y: np.ndarray, nuis: Nuisances, n_e: int) -> np.ndarray:
    """B: the correction for the error of h, per history unit (see the module doc)."""
    g, rsx, rx = nuis.gamma[n_e:], nuis.rho_sx[n_e:], nuis.rho_x[n_e:]
    if y.ndim == 2:  # m outcomes: one column of scores each
        g, rsx, rx = g[:, None], rsx[:, None], rx[:, None]
    return (1 - g) / g * (rsx - rx) / (rx * (1 - rx)) * (y - nuis.nu[n_e:])


def projection_se(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(se, se if h were known) of mean(A) + sum(B)/n_e, the two sample sizes fixed."""
    n_e, n_h = a.shape[0], b.shape[0]
    var_a = float(np.var(a, ddof=1)) / n_e
    return float(np.sqrt(var_a + n_h * float(np.var(b, ddof=1)) / n_e**2)), float(np.sqrt(var_a))


def _z(alpha: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - alpha / 2))


def surrogate_index(
    history_surrogates: np.ndarray,
    history_covariates: np.ndarray,
    history_outcome: np.ndarray,
    treatment: np.ndarray,
    surrogates: np.ndarray,
    covariates: np.ndarray,
    *,
    propensity: np.ndarray | None = None,
    surrogate_names: tuple[str, ...] | None = None,
    n_folds: int = 5,
    seed: int = 0,
    alpha: float = 0.05,
    learners: Learners | None = None,
) -> SurrogateEstimate:
    """The long-term effect of `treatment` (0/1, shape (n_e,)) projected through h.

    Surrogates are (n, k) and covariates (n, p) arrays (p may be 0), history first
    argument group, experiment second; `propensity` is the logged P(W = 1 | X) of a
    targeted experiment (estimated from X when None). Folds and learners are seeded by
    `seed`; the inputs are not modified.
    """
    (estimate,) = surrogate_index_outcomes(
        history_surrogates, history_covariates, np.asarray(history_outcome)[:, None],
        treatment, surrogates, covariates, propensity=propensity,
        surrogate_names=surrogate_names, n_folds=n_folds, seed=seed, alpha=alpha,
        learners=learners,
    )  # fmt: skip
    return estimate


def surrogate_index_outcomes(
    history_surrogates: np.ndarray,
    history_covariates: np.ndarray,
    history_outcomes: np.ndarray,
    treatment: np.ndarray,
    surrogates: np.ndarray,
    covariates: np.ndarray,
    *,
    propensity: np.ndarray | None = None,
    surrogate_names: tuple[str, ...] | None = None,
    n_folds: int = 5,
    seed: int = 0,
    alpha: float = 0.05,
    learners: Learners | None = None,
) -> list[SurrogateEstimate]:
    """`surrogate_index` for m long-term outcomes at once (`history_outcomes` (n_h, m)):
    one estimate per outcome, every nuisance but h and its arm means fitted once."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha == {alpha}, must be in (0, 1)")
    y_h = np.asarray(history_outcomes, dtype=float).reshape(history_surrogates.shape[0], -1)
    n_e, n_h, m = surrogates.shape[0], y_h.shape[0], y_h.shape[1]
    w = np.asarray(treatment, dtype=float)
    s = np.vstack([surrogates, history_surrogates]).astype(float)
    x = np.vstack([covariates, history_covariates]).astype(float)
    y = np.vstack([np.zeros((n_e, m)), y_h])
    plan = FoldPlan.shared(n_e, n_h, n_folds, np.random.default_rng(seed))
    nuis = fit_nuisances(
        w, s, x, y, n_e, plan, learners or default_learners(),
        propensity=propensity, extra_targets=s[:n_e],
    )  # fmt: skip
    return estimates_from(nuis, w, s[:n_e], y_h, surrogate_names, alpha)


def estimates_from(
    nuis: Nuisances,
    w: np.ndarray,
    s_e: np.ndarray,
    y_h: np.ndarray,
    surrogate_names: tuple[str, ...] | None,
    alpha: float,
) -> list[SurrogateEstimate]:
    """One estimate per column of `y_h` (n_h, m) from fitted nuisances whose arm means
    hold the m outcomes' then the k surrogates' columns (the experiment's `s_e`)."""
    n_e, (n_h, m) = w.shape[0], y_h.shape
    rho = nuis.rho_x[:n_e]
    a = aipw_scores(w, nuis.nu[:n_e], nuis.mu1[:, :m], nuis.mu0[:, :m], rho)
    b = history_scores(y_h, nuis, n_e)
    short = aipw_scores(w, s_e, nuis.mu1[:, m:], nuis.mu0[:, m:], rho)
    z = _z(alpha)
    names = surrogate_names or tuple(f"s{j}" for j in range(s_e.shape[1]))
    short_term = []
    for j, name in enumerate(names):
        eff = float(short[:, j].mean())
        sej = float(short[:, j].std(ddof=1) / np.sqrt(n_e))
        short_term.append(ShortTermEffect(name, eff, sej, eff - z * sej, eff + z * sej))
    out = []
    for j in range(m):
        estimate = float(a[:, j].mean() + b[:, j].sum() / n_e)
        se, se_known = projection_se(a[:, j], b[:, j])
        out.append(
            SurrogateEstimate(
                estimate=estimate,
                se=se,
                ci_lower=estimate - z * se,
                ci_upper=estimate + z * se,
                n_history=n_h,
                n_experiment=n_e,
                short_term=tuple(short_term),
                method=METHOD,
                se_h_known=se_known,
                alpha=alpha,
            )
        )
    return out
