"""The causal uplift of every message class on every objective, per class in turn.

`estimate_uplift(frame, ...)` splits a per-decision frame (from `decision_frame` or a flat
table) into one `ClassTask` per message class and runs `fit_class` on each through
`backend.map_fits` (`--jobs`). `fit_class` never raises: a class without hold-out
decisions (`no_holdout`, with what to log), without both arms, without overlap or with
too few decisions, or whose fit breaks, gets its status (`insufficient_data`,
`no_overlap`, `zero_variance`, `failed:<reason>`) and NaN numbers, and the run goes on
with the other classes. Over `max_clipped_share` clipped propensities a class is
estimated but gets `poor_overlap`, not `ok`.

Per class: guards → the design-aware propensity and stratified folds, their training
parts capped at `nuisance_max_rows` (shared by every objective; `econml_adapter.py`,
`sampling.py`) → per-arm outcome models of every objective, once
(`nuisances.arm_outcomes`) → per objective the doubly robust scores, whose means are the
overall ATE and the segment GATEs (`econml_adapter.fit_objective`) → joint covariance of
the objectives' ATEs per segment (correlation of the scores × their standard errors) →
refutation by the same estimator on a subsample (`refute.py`) → records. Segment cells
with fewer than `min_segment_size` decisions, or too few in an arm, keep their counts but
no estimates.

A class larger than `max_rows_per_fit` arrives already cut to a stratified sample of that
size (`sample_class`, called where the tasks are built), with its whole-class counts and
naive effects (`CellCounts`) alongside, so a worker never holds more than the cap.
A fit that runs out of memory (a `MemoryError`, e.g. under `uplift.memory_per_task`)
fails its class with `failed:memory_budget` and the run goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from upshot.attribution.uplift.att import effect_on_treated
from upshot.attribution.uplift.backend import THREADED_ROWS
from upshot.attribution.uplift.classtask import ClassOutcome, ClassTask
from upshot.attribution.uplift.econml_adapter import (
    ObjectiveFit,
    PropensityDesign,
    final_stage_sums,
    fit_objective,
    propensity_design,
    stratified_folds,
)
from upshot.attribution.uplift.evaluate import FoldSums
from upshot.attribution.uplift.nuisances import arm_outcomes
from upshot.attribution.uplift.refute import refute_task
from upshot.attribution.uplift.results import (
    CONFOUNDING_RISK,
    DR_SCORE_MEAN,
    INSUFFICIENT,
    NO_HOLDOUT,
    NO_OVERLAP,
    OK,
    POOR_OVERLAP,
    ZERO_VARIANCE,
    UpliftCovariance,
    UpliftEstimate,
    failed,
)
from upshot.attribution.uplift.sampling import capped_folds, spare_rows, strata_codes

if TYPE_CHECKING:
    pass

MIN_ARM_PER_FOLD = 10  # decisions of each arm per fold: fewer and the fold fits are noise
# rows the nuisance cap left out that judge when LightGBM stops adding trees, per fold:
# enough rows that noise in their loss rarely stops the trees early, few enough to score cheaply
STOPPING_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class Cell:
    """'all' (mask None) or one segment cell: its rows among those fitted (`fit`);
    `big` when it may be estimated."""

    label: str
    fit: np.ndarray | None
    big: bool


def _cells(task: ClassTask) -> list[Cell]:
    s = task.settings
    cells = [Cell("all", None, True)]
    for seg in task.segments:
        for code, level in enumerate(seg.levels):
            fit = seg.codes == code
            n, treated = int(fit.sum()), int(task.T[fit].sum())
            big = n >= s.min_segment_size and min(treated, n - treated) >= MIN_ARM_PER_FOLD
            cells.append(Cell(f"{seg.column}={level}", fit, big))
    return cells


def fit_class(task: ClassTask) -> ClassOutcome:
    """Estimate one class; never raises (a broken fit becomes a `failed:` status)."""
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    threads = task.threads if len(task.T) >= THREADED_ROWS else 1
    try:
        # BLAS and the nuisance models get the class's share of the CPUs, one thread if small
        with threadpool_limits(limits=threads):
            outcome = _fit_class(task, threads)
    except MemoryError:
        # the class's arrays are freed with the frames that raised; the next class can run
        budget = task.settings.memory_per_task_bytes
        within = f"{budget / 2**20:,.0f} MiB" if budget else "out of memory"
        status = failed(f"memory_budget ({within}; lower max_rows_per_fit)")
        outcome = _class_status(task, status, None, {"n": task.n, "sampling": task.sampling})
    except Exception as exc:  # a class whose fit breaks must not stop the others
        outcome = _class_status(task, failed(f"{type(exc).__name__}: {exc}"), None, {})
    outcome.diagnostics["seconds"] = round(time.perf_counter() - started, 3)
    return outcome


def _record(
    task: ClassTask, objective: str, segment: str, design: str | None, values: dict[str, Any]
) -> UpliftEstimate:
    """An estimate of `task`'s class; `values` are the remaining `UpliftEstimate` fields."""
    s = task.settings
    return UpliftEstimate(
        message_class=task.message_class,
        channel=task.channel,
        objective=objective,
        segment=segment,
        estimator=s.estimator,
        design=design,
        nuisance=s.nuisance,
        **values,
    )


def _class_status(
    task: ClassTask, status: str, design: str | None, diagnostics: dict[str, Any]
) -> ClassOutcome:
    """Only the overall rows, every one with `status` and NaN estimates."""
    whole = task.population["all"]
    rows = tuple(
        _record(
            task,
            name,
            "all",
            design,
            {
                "naive_effect": whole.naive[j],
                "n_treated": whole.n_treated,
                "n_control": whole.n_control,
                "clipped_share": diagnostics.get("clipped_share", float("nan")),
                "status": status,
                "details": dict(diagnostics),
            },
        )
        for j, name in enumerate(task.objectives)
    )
    return ClassOutcome(rows, (), {**diagnostics, "status": status})


def _fit_class(task: ClassTask, threads: int) -> ClassOutcome:
    s = task.settings
    T, X = task.T, task.X
    fitted, treated = len(T), int(T.sum())
    if task.population["all"].n_control == 0 and task.n > 0:
        return _class_status(task, NO_HOLDOUT, None, {"n": task.n, "message": NO_HOLDOUT_MESSAGE})
    if task.n < s.min_decisions or min(treated, fitted - treated) < MIN_ARM_PER_FOLD * s.folds:
        return _class_status(task, INSUFFICIENT, None, {"n": task.n, "sampling": task.sampling})
    folds = stratified_folds(T, s.folds, s.seed)
    crossfit, nuisance_sampling = capped_folds(
        folds, strata_codes(T, task.randomized), s.nuisance_max_rows, s.seed
    )
    # training rows the cap left out: they stop the nuisances' trees (propensity, outcomes)
    spare = spare_rows(folds, crossfit, STOPPING_ROWS, s.seed)
    design = propensity_design(
        T, X, task.logged, task.randomized, folds=crossfit, settings=s, threads=threads,
        spare=spare,
    )  # fmt: skip
    diagnostics: dict[str, Any] = {
        "n": task.n,
        "fit_rows": fitted,
        "sampling": {"fit": task.sampling, "nuisance": nuisance_sampling},
        "features": task.X.shape[1],
        "folds": s.folds,
        "randomized_share": None if task.randomized is None else float(task.randomized.mean()),
        "propensity_min": float(design.p.min()),
        "propensity_max": float(design.p.max()),
        "clipped_share": design.clipped_share,
        "ess_treated": round(design.ess_treated, 1),
        "ess_control": round(design.ess_control, 1),
        "pre_period": task.pre_period,
    }
    if design.clipped_share >= 1:  # not one decision within the bounds: nothing to weigh
        return _class_status(task, NO_OVERLAP, design.design, diagnostics)
    # over the limit the estimates are still made (from the clipped propensity), but the
    # status says they lean on clipped weights and must not be used as if they were ok
    status = POOR_OVERLAP if design.clipped_share > s.max_clipped_share else OK
    cells = _cells(task)
    masks = [c.fit for c in cells[1:] if c.big and c.fit is not None]
    on_ray = crossfit_on_ray(task)
    mu, discrete = _arm_outcomes(task, crossfit, spare, threads)
    # the linear final stage's Gram matrices, once for every objective
    sums = final_stage_sums(s.estimator, X, T, design.p, folds)
    fits: dict[str, ObjectiveFit | str] = {}
    for j, name in enumerate(task.objectives):
        arms = (mu[j], discrete[j]) if j in mu else None
        fits[name] = _fit_one(
            task, j, design, (folds, crossfit), masks, threads, on_ray, arms, sums
        )
    covariance = _covariance(task, cells, fits)
    refutations = _refute(task, T, X, fits, diagnostics, threads)
    if status == OK:
        status = _fitted_status(task, design.design)
    estimates = _estimates(task, cells, fits, refutations, design, diagnostics, status)
    # where the folds ran is the class's note, not an estimate's provenance: it changes
    # no number (tests compare the estimates of both backends bit for bit)
    notes = {**diagnostics, "design": design.design, "crossfit": "ray" if on_ray else "local"}
    if status != OK:
        notes["status"] = status
    return ClassOutcome(estimates, covariance, notes)


def _fitted_status(task: ClassTask, design: str) -> str:
    """`ok`, or `confounding_risk` for a targeted class whose propensity had to be estimated
    from covariates without any past behaviour: the targeting most likely used activity
    that they miss, and nothing then corrects the bias (its numbers are kept)."""
    if design == "estimated_propensity" and task.pre_period is False:
        return CONFOUNDING_RISK
    return OK


Folds = Sequence[tuple[np.ndarray, np.ndarray]]

NO_HOLDOUT_MESSAGE = (
    "no hold-out decisions: log every eligible decision, including the sends held back "
    "(treated = false, with the propensity the decision service used), e.g. a random "
    "holdout of a few percent of eligible users"
)


def _arm_outcomes(
    task: ClassTask, crossfit: Folds, spare: Sequence[np.ndarray], threads: int
) -> tuple[dict[int, np.ndarray], dict[int, bool]]:
    """Per-arm outcome predictions of every objective that varies, fitted once for the
    class on the capped folds (stopping early on the `spare` rows the cap left out):
    {objective index: (n, 2)}, and which are classifiers."""
    T, Y = task.T, task.Y
    varying = [j for j in range(Y.shape[1]) if np.ptp(Y[:, j]) > 0]
    if not varying:
        return {}, {}
    # a classifier needs both values in every fold's training rows of each arm
    discrete = [
        task.binary[j]
        and all(np.ptp(Y[train[T[train] == a], j]) > 0 for train, _ in crossfit for a in (0, 1))
        for j in varying
    ]
    s = task.settings
    mu = arm_outcomes(
        Y[:, varying], discrete, T, task.X, crossfit, kind=s.nuisance, seed=s.seed,
        threads=threads, spare=spare,
    )  # fmt: skip
    return (
        {j: mu[:, k, :] for k, j in enumerate(varying)},
        dict(zip(varying, discrete, strict=True)),
    )


def crossfit_on_ray(task: ClassTask) -> bool:
    """Whether EconML should fit this class's fold nuisances as nested Ray tasks.

    Only inside a Ray task (`uplift.backend = "ray"`), and only when the cluster has CPUs
    idle for them: with fewer classes than task slots (one huge class on a big cluster)
    the folds then run side by side; when every slot already fits a class, nesting would
    only add scheduling and copies. The fits are the same, so the numbers are too. Only
    the causal forest still fits folds inside EconML: the outcome and propensity models
    are fitted once per class, in the class's own task, for every estimator.
    """
    if task.settings.backend != "ray" or task.settings.estimator != "causal_forest":
        return False
    try:
        import ray
    except ImportError:
        return False
    if not ray.is_initialized():
        return False
    return float(ray.available_resources().get("CPU", 0.0)) >= task.threads


def _fit_one(
    task: ClassTask,
    j: int,
    design: PropensityDesign,
    folds: tuple[Folds, Folds],
    masks: Sequence[np.ndarray],
    threads: int,
    use_ray: bool,
    arms: tuple[np.ndarray, bool] | None,
    sums: FoldSums | None,
) -> ObjectiveFit | str:
    """One objective's fit, or the status saying why there is none; `folds` are the whole
    folds and the capped ones the nuisances train on; `arms` its per-arm outcomes (n, 2)
    and whether they came from classifiers (None: the objective never varies); `sums`
    the class's shared final-stage sums (`final_stage_sums`)."""
    s = task.settings
    y = task.Y[:, j]
    if arms is None:
        return ZERO_VARIANCE
    whole, crossfit = folds
    try:
        fit = fit_objective(
            y,
            task.T,
            task.X,
            design.p,
            arms[0],
            estimator=s.estimator,
            discrete_outcome=arms[1],
            folds=whole,
            crossfit=crossfit,
            use_ray=use_ray,
            seed=s.seed,
            threads=threads,
            alpha=s.alpha,
            masks=masks,
            sensitivity_strength=None if design.design == "randomized" else s.sensitivity_strength,
            calibration_groups=s.calibration_groups,
            sums=sums,
        )
    except MemoryError:
        raise  # the whole class is over its budget, not this objective
    except Exception as exc:  # one objective's failure leaves the others standing
        return failed(f"{type(exc).__name__}: {exc}")
    if not np.isfinite(fit.overall.ate) or not np.isfinite(fit.overall.ci_lower):
        return failed("degenerate fit (no finite standard error)")
    return fit


def _covariance(
    task: ClassTask,
    cells: list[Cell],
    fits: dict[str, ObjectiveFit | str],
) -> tuple[UpliftCovariance, ...]:
    """Cov of the objectives' ATEs per cell: corr(φ_a, φ_b) on the cell's rows × se_a × se_b."""
    ok = [(name, f) for name, f in fits.items() if isinstance(f, ObjectiveFit)]
    out: list[UpliftCovariance] = []
    gate_index = 0
    for cell in cells:
        if not cell.big:
            continue
        mask = cell.fit
        effects = [f.overall if mask is None else f.gates[gate_index] for _, f in ok]
        if mask is not None:
            gate_index += 1
        usable = [k for k, e in enumerate(effects) if np.isfinite(e.se) and e.se > 0]
        if not usable:
            continue
        scores = np.column_stack([ok[k][1].scores for k in usable])
        if mask is not None:
            scores = scores[mask]
        scores = scores[np.isfinite(scores).all(axis=1)]
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.atleast_2d(np.corrcoef(scores, rowvar=False))
        corr = np.where(np.isfinite(corr), corr, 0.0)
        np.fill_diagonal(corr, 1.0)
        se = np.array([effects[k].se for k in usable])
        cov = corr * np.outer(se, se)
        for a, ka in enumerate(usable):
            for b, kb in enumerate(usable):
                out.append(
                    UpliftCovariance(
                        task.message_class, cell.label, ok[ka][0], ok[kb][0], float(cov[a, b])
                    )
                )
    return tuple(out)


def _refute(
    task: ClassTask,
    T: np.ndarray,
    X: np.ndarray,
    fits: dict[str, ObjectiveFit | str],
    diagnostics: dict[str, Any],
    threads: int,
) -> dict[str, Any]:
    names = [name for name, f in fits.items() if isinstance(f, ObjectiveFit)]
    if not task.refute or not names:
        return {}
    try:
        return refute_task(task, T, X, names, threads=threads, min_arm=MIN_ARM_PER_FOLD)
    except MemoryError:
        raise
    except Exception as exc:  # refutation is a check; its failure must not void the estimate
        diagnostics["refute_error"] = failed(f"{type(exc).__name__}: {exc}")
        return {}


def _estimates(
    task: ClassTask,
    cells: list[Cell],
    fits: dict[str, ObjectiveFit | str],
    refutations: dict[str, Any],
    propensity: PropensityDesign,
    diagnostics: dict[str, Any],
    status: str,
) -> tuple[UpliftEstimate, ...]:
    design = propensity.design
    out: list[UpliftEstimate] = []
    design = propensity.design
    values: dict[str, Any]
    for j, name in enumerate(task.objectives):
        fit = fits[name]
        gate_index = 0
        for cell in cells:
            counts = task.population[cell.label]
            clipped = propensity.clipped if cell.fit is None else propensity.clipped[cell.fit]
            base: dict[str, Any] = {
                "naive_effect": counts.naive[j],
                "n_treated": counts.n_treated,
                "n_control": counts.n_control,
                "clipped_share": float(clipped.mean()) if len(clipped) else float("nan"),
            }
            if cell.fit is not None:
                base["details"] = {"sampling": diagnostics["sampling"]}
            if not cell.big:
                out.append(
                    _record(task, name, cell.label, design, {**base, "status": INSUFFICIENT})
                )
                continue
            if not isinstance(fit, ObjectiveFit):
                if cell.fit is None:  # one row says why; its segment rows would repeat it
                    values = {**base, "status": fit, "details": dict(diagnostics)}
                    out.append(_record(task, name, "all", design, values))
                continue
            effect = fit.overall if cell.fit is None else fit.gates[gate_index]
            gate_index += cell.fit is not None
            values = {
                **base,
                "ate": effect.ate,
                "ate_se": effect.se,
                "ate_ci_lower": effect.ci_lower,
                "ate_ci_upper": effect.ci_upper,
                "pvalue": effect.pvalue,
                "method": DR_SCORE_MEAN,
            }
            if cell.fit is None:
                values.update(_overall_extras(fit, refutations.get(name), diagnostics))
                # the effect on the treated, for touches' causal column (`att`)
                values["details"].update(effect_on_treated(fit.scores, propensity.p))
            out.append(_record(task, name, cell.label, design, {**values, "status": status}))
    return tuple(out)


def _overall_extras(
    fit: ObjectiveFit, refutation: Any, diagnostics: dict[str, Any]
) -> dict[str, Any]:
    ev = fit.evaluation
    details: dict[str, Any] = {
        **diagnostics,
        "discrete_outcome": fit.discrete_outcome,
        "qini_se": ev.qini_se,
        "auuc_se": ev.auuc_se,
    }
    extras: dict[str, Any] = {"qini": ev.qini, "auuc": ev.auuc, "calibration": ev.calibration}
    if fit.sensitivity is not None:
        sens = fit.sensitivity
        extras["robustness_value"] = sens.robustness_value
        details["sensitivity"] = {
            "strength": sens.strength,
            "ci_lower": sens.ci_lower,
            "ci_upper": sens.ci_upper,
        }
    if refutation is not None:
        extras.update(
            refute_placebo=refutation.placebo,
            refute_random_cause=refutation.random_cause,
            refute_subset=refutation.subset,
            refute_passed=refutation.passed,
        )
        details["refutation"] = {
            "estimate": refutation.estimate,
            "se": refutation.se,
            "n": refutation.n,
            "simulations": refutation.simulations,
            "placebo_passed": refutation.placebo_passed,
            "random_cause_passed": refutation.random_cause_passed,
            "subset_passed": refutation.subset_passed,
            "pvalues": refutation.pvalues,
        }
    extras["details"] = details
    return extras


ProgressFn = Callable[[str], None]


def class_failed(task: ClassTask, status: str) -> ClassOutcome:
    """The outcome of a class whose fit could not run at all (`failed:<reason>`)."""
    return _class_status(task, status, None, {"n": task.n, "sampling": task.sampling})
