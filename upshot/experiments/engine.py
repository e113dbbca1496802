"""From the query's rows (sufficient statistics per arm) to an `ExperimentAnalysis`.

Methods orchestrate, numbers happen in functions: this module picks arms, runs the SRM
check, builds each metric's `Moments` per arm, chooses the test, applies the
multiple-testing correction, and assigns a status to every row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from upshot.errors import UsageError
from upshot.experiments import corrections, sequential
from upshot.experiments.effects import Comparison, compare, proportions
from upshot.experiments.estimates import Adjust, ArmEstimate, Target, arm_estimates, lin_arms
from upshot.experiments.results import EffectResult, ExperimentAnalysis
from upshot.experiments.spec import MetricSpec
from upshot.experiments.srm import srm_test
from upshot.experiments.stats import Moments

if TYPE_CHECKING:
    from upshot.config import Experiments
    from upshot.experiments.cuped import LinArm

Hc2Pass = Callable[[Target, dict[str, "LinArm"]], Mapping[str, float]]

NAN = float("nan")
_NUMBERS = (
    "control", "treatment", "effect", "effect_se", "effect_ci_lower", "effect_ci_upper",
    "rel_effect", "rel_effect_se", "rel_effect_ci_lower", "rel_effect_ci_upper", "pvalue",
    "statistic", "df", "variance_reduction",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Options:
    """How to analyse: significance level, correction, adjustment, test, sequential."""

    alpha: float = 0.05
    correction: str = "holm"
    adjust: Adjust = "cuped"
    test: Literal["welch", "z"] = "welch"
    sequential: bool = False
    tuning: float = 5000.0
    srm_alpha: float = 0.001

    def __post_init__(self) -> None:
        for name in ("alpha", "srm_alpha"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value < 1):
                raise UsageError(f"{name} == {value!r}, must be in (0, 1)")
        if self.correction not in corrections.CORRECTIONS:
            raise UsageError(
                f"correction == {self.correction!r}, must be one of "
                + ", ".join(corrections.CORRECTIONS)
            )
        if self.adjust not in ("none", "cuped", "lin"):
            raise UsageError(f"adjust == {self.adjust!r}, must be one of none, cuped, lin")
        if self.test not in ("welch", "z"):
            raise UsageError(f"test == {self.test!r}, must be welch or z")
        if not (math.isfinite(self.tuning) and self.tuning > 0):
            raise UsageError(f"sequential tuning == {self.tuning!r}, must be > 0")

    @classmethod
    def from_config(cls, experiments: Experiments, **overrides: Any) -> Options:
        """The configured options, with the non-None `overrides` (from flags) applied."""
        base = cls(
            alpha=experiments.alpha,
            correction=experiments.correction,
            adjust=experiments.adjust,
            test=experiments.test,
            sequential=experiments.sequential,
            tuning=experiments.sequential_tuning,
            srm_alpha=experiments.srm_alpha,
        )
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True, slots=True)
class Groups:
    """The query's rows sorted out: `arms` in order (control first) with their rows,
    users `excluded` by reason, and users of variants the split does not name."""

    arms: tuple[str, ...]
    rows: dict[str, dict[str, Any]]
    excluded: dict[str, int]
    unknown: dict[str, int]


def sort_rows(
    rows: Sequence[Mapping[str, Any]], control: str, split: Mapping[str, float] | None
) -> Groups:
    """Split rows keyed by `variant` and `exclusion` into arms and exclusions."""
    arm_rows: dict[str, dict[str, Any]] = {}
    excluded: dict[str, int] = {}
    for row in rows:
        reason = row.get("exclusion") or ("null_variant" if row.get("variant") is None else "")
        if reason:
            excluded[reason] = excluded.get(reason, 0) + int(row["n"])
        else:
            arm_rows[str(row["variant"])] = dict(row)
    control = resolve_control(control, arm_rows, split)
    if split:
        if control not in split:
            raise UsageError(f"--split names no arm {control!r}, the control")
        arms = [control, *(a for a in split if a != control)]
    else:
        arms = [control, *sorted(a for a in arm_rows if a != control)]
    unknown = {a: int(r["n"]) for a, r in arm_rows.items() if a not in arms}
    if unknown:
        excluded["unknown_variant"] = sum(unknown.values())
    return Groups(tuple(arms), {a: arm_rows[a] for a in arms if a in arm_rows}, excluded, unknown)


def resolve_control(
    control: str, arm_rows: Mapping[str, Any], split: Mapping[str, float] | None
) -> str:
    """The arm label `control` names: itself, or the one numeric label equal to it (a
    numeric variant column reads as '0.0', which `--control 0` means). A control that
    names no arm found is a usage error listing the arms, never an empty arm."""
    if control in arm_rows or not arm_rows or (split and control in split):
        return control
    matches = [a for a in arm_rows if _same_number(a, control)]
    if len(matches) == 1:
        return matches[0]
    found = ", ".join(sorted(arm_rows))
    raise UsageError(f"--control {control}: no such arm (arms found: {found})")


def _same_number(a: str, b: str) -> bool:
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    return math.isfinite(x) and x == y


def is_binary(rows: Mapping[str, Mapping[str, Any]], variable: str, prefix: str = "") -> bool:
    """True when `variable` only takes the values 0 and 1 (NULL is missing, not a value);
    `prefix` names the metric's complete-case aggregates.

    Its range must lie in [0, 1], and then sum(x*x) == sum(x) holds only if every value is
    0 or 1 (x*x < x strictly inside the interval); both sums are exact for 0/1 data.
    """
    arms = [r for r in rows.values() if r.get("n")]
    if not arms:
        return False
    for r in arms:
        lo, hi = r.get(f"{variable}_min"), r.get(f"{variable}_max")
        total = r.get(f"{prefix}{variable}_sum")
        if lo is None and hi is None and (total or 0) == 0:
            continue  # only NULLs in this arm
        if lo is None or hi is None or lo < 0 or hi > 1:
            return False
        if total != r.get(f"{prefix}{variable}_sum_squares"):
            return False
    return True


def analyze_rows(
    rows: Sequence[Mapping[str, Any]],
    specs: Sequence[MetricSpec],
    *,
    experiment: str,
    control: str,
    split: Mapping[str, float] | None,
    options: Options,
    source: str,
    hc2: Hc2Pass | None = None,
) -> ExperimentAnalysis:
    """The whole analysis of one experiment from its sufficient-statistics rows.

    `hc2` runs the second pass of Lin's HC2 variance (see `cuped`): given a metric and
    each arm's constants it returns each arm's HC2 sum. Without it (rows alone) a Lin
    variance is the residual variance / n.
    """
    groups = sort_rows(rows, control, split)
    control = groups.arms[0]
    counts = {a: int(groups.rows[a]["n"]) if a in groups.rows else 0 for a in groups.arms}
    if len(groups.arms) >= 2:
        weights = dict(split) if split else dict.fromkeys(groups.arms, 1.0)
        srm = srm_test(counts, weights, alpha=options.srm_alpha, unknown=groups.unknown)
    else:
        srm = srm_test({}, {control: 1.0, "(none)": 1.0}, alpha=options.srm_alpha)
    results: list[EffectResult] = []
    for spec in specs:
        # a file's rows carry each metric's complete-case aggregates (NULL is missing);
        # the warehouse's do not: there no event is a real 0
        prefix = spec.target().case[0]
        cased = any(prefix + "n" in r for r in groups.rows.values())
        prefix = prefix if cased else ""
        binary = (
            spec.binary
            if spec.binary is not None
            else is_binary(groups.rows, spec.numerator, prefix)
        )
        target = replace(spec.target(binary and spec.denominator is None), indicators=cased)
        moments = [
            Moments.from_row(groups.rows.get(a, {}), target.variables, prefix) for a in groups.arms
        ]
        missing = [
            int(groups.rows[a]["n"]) - int(np.asarray(m.n)) if a in groups.rows else 0
            for a, m in zip(groups.arms, moments, strict=True)
        ]
        sums = None
        if hc2 is not None and target.covariates and needs_hc2(target, options.adjust):
            pooled = options.adjust == "cuped"
            arms_k = lin_arms(moments, target, pooled=pooled)
            found = hc2(target, dict(zip(groups.arms, arms_k, strict=True)))
            sums = [np.asarray(found.get(a, NAN)) for a in groups.arms]
        estimates = arm_estimates(moments, target, options.adjust, hc2=sums)
        finite = all(np.isfinite(m.sums).all() and np.isfinite(m.products).all() for m in moments)
        for arm, est, miss in zip(groups.arms[1:], estimates[1:], missing[1:], strict=True):
            row = effect_result(spec, target, arm, estimates[0], est, options)
            row = replace(row, n_missing_control=missing[0], n_missing_treatment=miss)
            if not finite and row.status != "insufficient_data":
                # NaN or infinite values in the data poison every sum: nothing is estimable
                nan: dict[str, Any] = dict.fromkeys(_NUMBERS, NAN)
                row = replace(row, **nan, status="failed:non_finite_values")
            results.append(row)
    adjusted = corrections.adjust([r.pvalue for r in results], options.correction)
    results = [replace(r, pvalue_adj=float(p)) for r, p in zip(results, adjusted, strict=True)]
    seq = (
        {"tuning": options.tuning, "rho": sequential.rho(options.alpha, options.tuning)}
        if options.sequential
        else None
    )
    return ExperimentAnalysis(
        experiment=experiment,
        control_arm=control,
        arms=counts,
        srm=srm,
        results=tuple(results),
        excluded=groups.excluded,
        alpha=options.alpha,
        correction=options.correction,
        adjust=options.adjust,
        sequential=seq,
        source=source,
    )


def needs_hc2(target: Target, adjust: str) -> bool:
    """Lin's adjustment, and CUPED on a ratio, need the HC2 pass: Lin's variance is HC2;
    with heavy tails the slope-as-known variance of a ratio's CUPED is too small at a few
    hundred users per arm (A/A false positives near 7%), and so is HC2 alone, the larger
    of the two is not (see docs/experiments.md)."""
    return adjust == "lin" or (adjust == "cuped" and target.kind == "ratio")


def method_name(target: Target, options: Options) -> str:
    adjusted = bool(target.covariates) and options.adjust != "none"
    if target.kind == "ratio":
        # a t reference, Welch df on the linearized values (see effects.compare)
        test = "z" if options.test == "z" else "welch_t"
        name = f"delta_{options.adjust}_{test}" if adjusted else f"delta_{test}"
    elif target.kind == "proportion":
        name = "proportion_z"
    else:
        test = "z" if options.test == "z" or (adjusted and target.binary) else "welch_t"
        name = f"{options.adjust}_{test}" if adjusted else test
    return name + ("_sequential" if options.sequential else "")


def comparison(target: Target, c: ArmEstimate, t: ArmEstimate, options: Options) -> Comparison:
    if target.kind == "proportion":
        return proportions(c, t, alpha=options.alpha)
    method = method_name(target, options)
    dist: Literal["t", "normal"] = "t" if "welch_t" in method else "normal"
    return compare(c, t, alpha=options.alpha, dist=dist)


def effect_result(
    spec: MetricSpec,
    target: Target,
    arm: str,
    c: ArmEstimate,
    t: ArmEstimate,
    options: Options,
) -> EffectResult:
    """One row: the comparison's numbers, NaN where they cannot be estimated, a status."""
    comp = comparison(target, c, t, options)
    x = {f: float(np.asarray(getattr(comp, f))) for f in Comparison.__dataclass_fields__}
    n_c, n_t = int(np.asarray(c.n)), int(np.asarray(t.n))
    raw_c, raw_t = float(np.asarray(c.raw)), float(np.asarray(t.raw))
    # the values the effect is the difference of (adjusted when adjusted): the row reconciles
    val_c, val_t = float(np.asarray(c.value)), float(np.asarray(t.value))
    adjusted = bool(target.covariates) and options.adjust != "none"
    var = float(np.asarray(c.variance + t.variance))
    raw_var = float(np.asarray(c.raw_variance + t.raw_variance))
    reduction = 1.0 - var / raw_var if adjusted and raw_var > 0 else NAN
    if n_c < 2 or n_t < 2:
        status = "insufficient_data"
    elif target.kind == "ratio" and not (math.isfinite(raw_c) and math.isfinite(raw_t)):
        status = "zero_denominator"
    elif not x["se"] > 0:
        status = "zero_variance"
    elif not math.isfinite(x["rel"]):
        status = "zero_denominator"
    else:
        status = "ok"
    if status == "ok" and options.sequential:
        x.update(_sequential(x, n_c + n_t, options))
    if status == "insufficient_data" or (status == "zero_denominator" and target.kind == "ratio"):
        x = dict.fromkeys(x, NAN)
        reduction = NAN
    elif status == "zero_variance":
        # the difference itself is known; everything that needs a standard error is not
        keep = ("effect", "rel")
        x = {k: (v if k in keep else NAN) for k, v in x.items()}
        reduction = NAN
    elif status == "zero_denominator":  # the control mean is 0: only the relative lift fails
        x.update(dict.fromkeys(("rel", "rel_se", "rel_ci_lower", "rel_ci_upper"), NAN))
    return EffectResult(
        metric=spec.name,
        arm=arm,
        control=(val_c if math.isfinite(val_c) else raw_c) if n_c >= 1 else NAN,
        treatment=(val_t if math.isfinite(val_t) else raw_t) if n_t >= 1 else NAN,
        effect=x["effect"],
        effect_se=x["se"],
        effect_ci_lower=x["ci_lower"],
        effect_ci_upper=x["ci_upper"],
        rel_effect=x["rel"],
        rel_effect_se=x["rel_se"],
        rel_effect_ci_lower=x["rel_ci_lower"],
        rel_effect_ci_upper=x["rel_ci_upper"],
        pvalue=x["pvalue"],
        pvalue_adj=NAN,
        method=method_name(target, options),
        status=status,
        n_control=n_c,
        n_treatment=n_t,
        statistic=x["statistic"],
        df=x["df"],
        variance_reduction=reduction,
        kind=target.kind,
        covariates=target.covariates if adjusted else (),
        role=spec.role,
        margin=spec.margin,
        higher_is_better=spec.higher_is_better,
        control_raw=raw_c if n_c >= 1 else NAN,
        treatment_raw=raw_t if n_t >= 1 else NAN,
    )


def _sequential(x: dict[str, float], n: int, options: Options) -> dict[str, float]:
    """Confidence sequences and the always-valid p-value in place of the fixed-horizon ones."""
    a, tune = options.alpha, options.tuning
    hw = float(sequential.halfwidth(np.asarray(x["se"]), np.asarray(n), a, tune))
    rel_hw = float(sequential.halfwidth(np.asarray(x["rel_se"]), np.asarray(n), a, tune))
    p = float(
        sequential.pvalue(np.asarray(x["effect"]), np.asarray(x["se"]), np.asarray(n), a, tune)
    )
    return {
        "ci_lower": x["effect"] - hw,
        "ci_upper": x["effect"] + hw,
        "rel_ci_lower": x["rel"] - rel_hw,
        "rel_ci_upper": x["rel"] + rel_hw,
        "pvalue": p,
    }
