"""The ship / no-ship verdict of Schultzberg, Ankargren and Frånberg (2024).

"Risk-aware product decisions in A/B tests with multiple metrics" (arXiv 2402.11609).
Each metric has a role, and a treatment arm ships only if

1. at least one **success** metric is significantly better: one-sided superiority tests
   at alpha / (S * K), Bonferroni over the S success metrics (and the K treatment arms,
   each being a separate chance to ship) and over nothing else;
2. every **guardrail** metric is significantly non-inferior: a one-sided test that the
   relative change is better than -margin, at alpha *without* correction (all must pass,
   an intersection-union test, so the false-ship rate is already bounded by alpha; the
   price is power, which `power.plan` pays by splitting beta over the guardrails);
3. no metric at all significantly **deteriorates**: a one-sided inferiority test on every
   metric at `deterioration_alpha` (these only ever block shipping, so they need no
   correction for the false-ship rate; their false alarms cost power instead);
4. the **quality** checks pass: no sample ratio mismatch, at least `min_sample` users in
   each arm. Otherwise the verdict is `invalid`, whatever the metrics say.

Under the null of no improvement the chance of a `ship` is at most alpha. A verdict is
not an error: the CLI exits 0 whatever it is unless asked otherwise.

With confidence sequences (`sequential`), each one-sided test is decided by the
always-valid two-sided sequence at the same level, which is conservative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from upshot.experiments import sequential
from upshot.experiments.effects import one_sided_p
from upshot.experiments.results import EffectResult, ExperimentAnalysis
from upshot.results import ResultsMixin

if TYPE_CHECKING:
    from upshot.config import Config

VERDICTS = ("ship", "no_ship", "invalid")


@dataclass(frozen=True, slots=True)
class MetricDecision:
    """One metric's part in one arm's verdict.

    `pvalue` is the one-sided p-value of the role's test (superiority for success,
    non-inferiority for guardrails; NaN for deterioration-only metrics), `level` the level
    it was held to; `passed` is None for deterioration-only metrics. `deterioration_pvalue`
    is the one-sided p-value of 'worse than control'.
    """

    metric: str
    arm: str
    role: str
    rel_effect: float
    pvalue: float
    level: float
    passed: bool | None
    deteriorated: bool
    deterioration_pvalue: float
    status: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class ArmVerdict:
    """The verdict for one treatment arm and the reasons behind it (quality first)."""

    arm: str
    verdict: str
    reasons: tuple[str, ...]
    metrics: tuple[MetricDecision, ...]


@dataclass(frozen=True, slots=True)
class Verdict(ResultsMixin):
    """The experiment's verdict: `ship` if any arm ships (`ship_arms`), `invalid` if the
    quality checks fail, else `no_ship`; one `ArmVerdict` per treatment arm."""

    experiment: str
    verdict: str
    ship_arms: tuple[str, ...]
    arms: tuple[ArmVerdict, ...]
    quality: tuple[str, ...]
    success_level: float
    guardrail_level: float
    deterioration_alpha: float
    analysis: ExperimentAnalysis

    def to_dicts(self) -> list[dict[str, Any]]:
        return [m.to_dict() for a in self.arms for m in a.metrics]

    def to_document(self) -> dict[str, Any]:
        """The `--json` document of `upshot experiments decide`."""
        doc = self.analysis.to_document()
        return {
            "experiment": self.experiment,
            "verdict": self.verdict,
            "ship_arms": list(self.ship_arms),
            "quality": list(self.quality),
            "levels": {
                "success": self.success_level,
                "guardrail": self.guardrail_level,
                "deterioration": self.deterioration_alpha,
            },
            "arms": [
                {
                    "arm": a.arm,
                    "verdict": a.verdict,
                    "reasons": list(a.reasons),
                    "metrics": [m.to_dict() for m in a.metrics],
                }
                for a in self.arms
            ],
            "srm": doc["srm"],
            "excluded": doc["excluded"],
            "results": doc["results"],
        }


def quality_checks(analysis: ExperimentAnalysis, min_sample: int) -> list[str]:
    """Reasons the experiment cannot be judged at all (empty when it can)."""
    problems = []
    srm = analysis.srm
    if srm.status == "srm":
        problems.append(f"sample ratio mismatch: p = {srm.pvalue:.2g} < {srm.alpha:g}")
    elif srm.status == "unknown_variant":
        unknown = ", ".join(f"{k} ({v} users)" for k, v in srm.unknown.items())
        problems.append(f"variants outside the intended split: {unknown}")
    elif srm.status != "ok":
        problems.append(f"sample ratio check not possible: {srm.status}")
    for arm, n in analysis.arms.items():
        if n < min_sample:
            problems.append(f"arm {arm!r} has {n} users < min_sample {min_sample}")
    return problems


def _one_sided(r: EffectResult, better: bool) -> float:
    """One-sided p-value that the arm is better (or worse) than control."""
    return float(
        one_sided_p(np.asarray(r.statistic), np.asarray(r.df), greater=better == r.higher_is_better)
    )


def _sequential_side(r: EffectResult, better: bool, level: float, tuning: float) -> float:
    """The always-valid two-sided p-value if the effect points that way, else 1."""
    sign = 1.0 if r.higher_is_better else -1.0
    if (sign * r.effect > 0) != better:
        return 1.0
    n = r.n_control + r.n_treatment
    return float(
        sequential.pvalue(
            np.asarray(r.effect), np.asarray(r.effect_se), np.asarray(n), level, tuning
        )
    )


def _noninferiority(
    r: EffectResult, level: float, tuning: float | None
) -> tuple[bool, float, float]:
    """(passed, p-value, one-sided bound) of 'relative change better than -margin'.

    With confidence sequences the bound decides and there is no p-value (NaN).
    """
    from upshot.experiments.effects import critical

    sign = 1.0 if r.higher_is_better else -1.0
    if tuning is not None:
        n = r.n_control + r.n_treatment
        hw = float(sequential.halfwidth(np.asarray(r.rel_effect_se), np.asarray(n), level, tuning))
        bound = sign * r.rel_effect - hw
        return bound > -r.margin, math.nan, sign * bound
    z = (sign * r.rel_effect + r.margin) / r.rel_effect_se
    p = float(one_sided_p(np.asarray(z), np.asarray(r.df), greater=True))
    crit = float(critical(2 * level, np.asarray(r.df)))
    return p < level, p, r.rel_effect - sign * crit * r.rel_effect_se


def decide_metric(
    r: EffectResult, *, success_level: float, alpha: float, deterioration_alpha: float,
    tuning: float | None,
) -> MetricDecision:  # fmt: skip
    """Apply `r.role`'s test and the deterioration test to one result row."""
    lift = f"{r.rel_effect:+.2%}" if math.isfinite(r.rel_effect) else f"{r.effect:+.4g}"
    passed: bool | None
    # a control mean of 0 leaves only the relative lift undefined: the absolute test of a
    # success or deterioration metric stands; a guardrail's margin is relative, so it cannot
    absolute_only = (
        r.status == "zero_denominator" and r.kind != "ratio" and r.role != "guardrail"
        and math.isfinite(r.statistic)
    )  # fmt: skip
    if r.status != "ok" and not absolute_only:
        reason = f"{r.role}: no estimate ({r.status})"
        passed = None if r.role == "deterioration" else False
        return MetricDecision(
            r.metric, r.arm, r.role, r.rel_effect, math.nan, math.nan, passed, False, math.nan,
            r.status, reason + ("" if passed is None else ", so it cannot pass"),
        )  # fmt: skip
    p_worse = (
        _one_sided(r, False)
        if tuning is None
        else _sequential_side(r, False, deterioration_alpha, tuning)
    )
    worse = p_worse < deterioration_alpha
    worse_text = f"significantly worse ({lift}, p = {p_worse:.2g} < {deterioration_alpha:g})"
    if r.role == "success":
        p = (
            _one_sided(r, True)
            if tuning is None
            else _sequential_side(r, True, success_level, tuning)
        )
        passed = p < success_level
        reason = (
            f"success: significantly better ({lift}, p = {p:.2g} < {success_level:.3g})"
            if passed
            else f"success: not significantly better ({lift}, p = {p:.2g} >= {success_level:.3g})"
        )
        level = success_level
    elif r.role == "guardrail":
        passed, p, bound = _noninferiority(r, alpha, tuning)
        verb = "non-inferior" if passed else "not shown non-inferior"
        reason = (
            f"guardrail: {verb} ({lift}, bound {bound:+.2%} vs margin "
            f"{'-' if r.higher_is_better else '+'}{r.margin:.2%}, p = {p:.2g})"
        )
        level = alpha
    else:
        p, passed, level = math.nan, None, math.nan
        reason = "deterioration: " + (
            worse_text if worse else f"no significant deterioration ({lift})"
        )
    if worse and r.role != "deterioration":
        reason += f"; {worse_text}"
    return MetricDecision(
        r.metric, r.arm, r.role, r.rel_effect, p, level, passed, worse, p_worse, r.status, reason
    )


def decide(
    analysis: ExperimentAnalysis,
    *,
    deterioration_alpha: float | None = None,
    min_sample: int | None = None,
    tuning: float | None = None,
    config: Config | None = None,
) -> Verdict:
    """The verdict for every treatment arm of an analysed experiment.

    `deterioration_alpha` and `min_sample` default to `config.experiments`, and without
    `config` it is read as the CLI reads it (`$UPSHOT_CONFIG`, else ./upshot.toml, else
    the defaults 0.01 and 100), so `decide(analyze(...))` gives the verdict of
    `upshot experiments decide` in the same folder. `tuning` is the confidence sequences'
    tuning parameter when the analysis is sequential (taken from the analysis when it is).
    """
    if deterioration_alpha is None or min_sample is None:
        from upshot.config import load_config

        settings = (config or load_config()).experiments
        if deterioration_alpha is None:
            deterioration_alpha = settings.deterioration_alpha
        if min_sample is None:
            min_sample = settings.min_sample
    if not 0 < deterioration_alpha < 1:
        raise ValueError(f"deterioration_alpha == {deterioration_alpha}, must be in (0, 1)")
    if min_sample < 0:
        raise ValueError(f"min_sample == {min_sample}, must be >= 0")
    alpha = analysis.alpha
    if tuning is None and analysis.sequential:
        tuning = float(analysis.sequential["tuning"])
    arms = [a for a in analysis.arms if a != analysis.control_arm]
    n_success = len({r.metric for r in analysis.results if r.role == "success"})
    success_level = alpha / max(1, n_success * max(1, len(arms)))
    quality = quality_checks(analysis, min_sample)
    verdicts = []
    for arm in arms:
        rows = [r for r in analysis.results if r.arm == arm]
        decisions = tuple(
            decide_metric(
                r, success_level=success_level, alpha=alpha,
                deterioration_alpha=deterioration_alpha, tuning=tuning,
            )
            for r in rows
        )  # fmt: skip
        verdicts.append(_arm_verdict(arm, decisions, quality, n_success))
    ship = tuple(v.arm for v in verdicts if v.verdict == "ship")
    overall = "invalid" if quality else "ship" if ship else "no_ship"
    return Verdict(
        analysis.experiment, overall, ship, tuple(verdicts), tuple(quality), success_level,
        alpha, deterioration_alpha, analysis,
    )  # fmt: skip


def _arm_verdict(
    arm: str, decisions: tuple[MetricDecision, ...], quality: list[str], n_success: int
) -> ArmVerdict:
    reasons = [f"quality: {q}" for q in quality]
    won = any(d.passed for d in decisions if d.role == "success")
    guards_ok = all(d.passed for d in decisions if d.role == "guardrail")
    worse = [d.metric for d in decisions if d.deteriorated]
    if n_success == 0:
        reasons.append("no success metric: nothing can justify shipping")
    elif not won:
        reasons.append("no success metric is significantly better")
    if not guards_ok:
        failed = [d.metric for d in decisions if d.role == "guardrail" and not d.passed]
        reasons.append(f"guardrails not shown non-inferior: {', '.join(failed)}")
    if worse:
        reasons.append(f"significant deterioration: {', '.join(worse)}")
    if quality:
        verdict = "invalid"
    elif won and guards_ok and not worse:
        verdict = "ship"
        reasons.append("a success metric won, every guardrail held, nothing deteriorated")
    else:
        verdict = "no_ship"
    return ArmVerdict(arm, verdict, tuple(reasons), decisions)
