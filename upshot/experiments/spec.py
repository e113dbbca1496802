"""What to measure: metric definitions from `upshot.toml` or from command-line flags.

A `MetricSpec` names its variables (the per-user columns the SQL aggregates) and its
role in the verdict. In the warehouse each variable is an `EventVariable`: an
aggregation of outcome events in a window after assignment (or, for a CUPED covariate,
before it). In a user-level table the variables are the table's columns.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from upshot.config import parse_window
from upshot.errors import UsageError
from upshot.experiments.estimates import Target

if TYPE_CHECKING:
    from upshot.config import Experiments

Role = Literal["success", "guardrail", "deterioration"]
ROLES: tuple[str, ...] = ("success", "guardrail", "deterioration")
PRE = "pre_"  # the warehouse's pre-period covariate of metric m is the variable pre_m


@dataclass(frozen=True, slots=True)
class EventVariable:
    """A per-user value built from `outcomes`: `aggregation` of `events` in a window.

    `window_days` after assignment (strictly after, up to and including the end), or
    before it when `pre` (from `window_days` before up to, not including, assignment).
    `winsorize` caps it at that quantile over all users of the experiment.
    """

    name: str
    events: tuple[str, ...]
    aggregation: str
    window_days: float
    pre: bool = False
    winsorize: float | None = None


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric of an experiment. `binary=None` means: detect 0/1 values from the data.

    `margin` is the relative non-inferiority margin of a guardrail (0.02: at most 2% worse).
    """

    name: str
    numerator: str
    denominator: str | None = None
    covariates: tuple[str, ...] = ()
    binary: bool | None = False
    role: Role = "success"
    margin: float = 0.0
    higher_is_better: bool = True

    def target(self, binary: bool = False) -> Target:
        return Target(self.numerator, self.denominator, self.covariates, binary)

    @property
    def variables(self) -> tuple[str, ...]:
        return self.target().variables


def check_fraction(value: float, what: str) -> float:
    """`value` if it lies strictly between 0 and 1, else a UsageError that says so."""
    if not (isinstance(value, int | float) and math.isfinite(value) and 0 < value < 1):
        raise UsageError(f"{what} == {value!r}, must be in (0, 1)")
    return float(value)


def from_config(
    experiments: Experiments, names: Sequence[str] | None = None
) -> tuple[list[MetricSpec], list[EventVariable]]:
    """The configured metrics and ratios (all, or those in `names`) and their variables."""
    metrics, ratios = experiments.metrics, experiments.ratios
    known = list(metrics) + list(ratios)
    wanted = list(names) if names else known
    for name in wanted:
        if name not in known:
            raise UsageError(f"metric {name!r} is not configured (known: {', '.join(known)})")
    variables: dict[str, EventVariable] = {}

    def need(metric: str, where: str) -> tuple[str, tuple[str, ...]]:
        if metric not in metrics:
            raise UsageError(f"{where} == {metric!r}, must name one of experiments.metrics")
        m = metrics[metric]
        where_m = f"experiments.metrics.{metric}"
        if m.winsorize is not None:
            check_fraction(m.winsorize, f"{where_m}.winsorize")
        if not m.events:
            raise UsageError(f"{where_m}.events is empty")
        days = parse_window(m.window, f"{where_m}.window")
        variables[metric] = EventVariable(metric, m.events, m.aggregation, days, False, m.winsorize)
        if not m.pre_window:
            return metric, ()
        pre = PRE + metric
        if pre in metrics:
            raise UsageError(f"{where_m}.pre_window: a metric is already named {pre!r}")
        pre_days = parse_window(m.pre_window, f"{where_m}.pre_window")
        variables[pre] = EventVariable(pre, m.events, m.aggregation, pre_days, True, m.winsorize)
        return metric, (pre,)

    specs = []
    for name in wanted:
        if name in metrics:
            m = metrics[name]
            var, covs = need(name, "metric")
            _check_margin(m.margin, f"experiments.metrics.{name}.margin")
            specs.append(
                MetricSpec(
                    name, var, None, covs, m.aggregation == "any", m.role, m.margin,
                    m.higher_is_better,
                )
            )  # fmt: skip
        else:
            r = ratios[name]
            where = f"experiments.ratios.{name}"
            num, num_covs = need(r.numerator, f"{where}.numerator")
            den, den_covs = need(r.denominator, f"{where}.denominator")
            _check_margin(r.margin, f"{where}.margin")
            specs.append(
                MetricSpec(
                    name, num, den, num_covs + den_covs, False, r.role, r.margin,
                    r.higher_is_better,
                )
            )  # fmt: skip
    return specs, list(variables.values())


def _check_margin(margin: float, where: str) -> None:
    if not (math.isfinite(margin) and 0 <= margin < 1):
        raise UsageError(f"{where} == {margin!r}, must be in [0, 1)")


def parse_pairs(items: Iterable[str], flag: str) -> list[tuple[str, str]]:
    """`a=b` items (a comma list is several) as pairs; a one-line error names the flag."""
    pairs = []
    for item in items:
        for part in _split_top(item):
            key, sep, value = part.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise UsageError(f"{flag} {part!r}: expected NAME=VALUE")
            pairs.append((key.strip(), value.strip()))
    return pairs


def _split_top(item: str) -> list[str]:
    """Split `a=x,b=y` into items, but keep `m=x,y` (values without '=') together."""
    out: list[str] = []
    for piece in item.split(","):
        if "=" in piece or not out:
            out.append(piece)
        else:
            out[-1] += "," + piece
    return out


def parse_split(text: str | None) -> dict[str, float] | None:
    """`control=0.5,treatment=0.5` as weights."""
    if not text:
        return None
    split: dict[str, float] = {}
    for arm, value in parse_pairs([text], "--split"):
        try:
            split[arm] = float(value)
        except ValueError:
            raise UsageError(f"--split {arm}={value}: the weight must be a number") from None
    return split


def from_table_args(
    metrics: Sequence[str],
    ratios: Sequence[str] = (),
    covariates: Sequence[str] = (),
    *,
    guardrails: Sequence[str] = (),
    deteriorations: Sequence[str] = (),
    lower_is_better: Sequence[str] = (),
) -> list[MetricSpec]:
    """Metric specs from `--metric col`, `--ratio num/den`, `--covariate metric=col[,col]`."""
    specs: dict[str, MetricSpec] = {}
    for col in metrics:
        if col in specs:
            raise UsageError(f"--metric {col} is given twice")
        specs[col] = MetricSpec(col, col, binary=None)
    for text in ratios:
        num, sep, den = text.partition("/")
        if not sep or not num.strip() or not den.strip():
            raise UsageError(f"--ratio {text!r}: expected NUMERATOR/DENOMINATOR columns")
        name = f"{num.strip()}/{den.strip()}"
        if name in specs:
            raise UsageError(f"--ratio {name} is given twice")
        specs[name] = MetricSpec(name, num.strip(), den.strip())
    covs: dict[str, list[str]] = {}
    for metric, cols in parse_pairs(covariates, "--covariate"):
        if metric not in specs:
            raise UsageError(f"--covariate {metric}=...: {metric!r} is not a --metric or --ratio")
        covs.setdefault(metric, []).extend(c.strip() for c in cols.split(",") if c.strip())
    for metric, names in covs.items():
        own = {specs[metric].numerator, specs[metric].denominator}
        if own & set(names):
            raise UsageError(f"--covariate {metric}=...: a metric cannot be its own covariate")
        specs[metric] = replace(specs[metric], covariates=tuple(dict.fromkeys(names)))
    return apply_roles(list(specs.values()), guardrails, deteriorations, lower_is_better)


def apply_roles(
    specs: list[MetricSpec],
    guardrails: Sequence[str] = (),
    deteriorations: Sequence[str] = (),
    lower_is_better: Sequence[str] = (),
) -> list[MetricSpec]:
    """Override roles: `--guardrail name=margin`, `--deterioration name`, `--lower-is-better`."""
    by_name = {s.name: s for s in specs}

    def known(name: str, flag: str) -> MetricSpec:
        if name not in by_name:
            raise UsageError(f"{flag} {name}: no such metric (known: {', '.join(by_name)})")
        return by_name[name]

    for name, margin in parse_pairs(guardrails, "--guardrail"):
        try:
            value = float(margin)
        except ValueError:
            raise UsageError(f"--guardrail {name}={margin}: margin must be a number") from None
        _check_margin(value, f"--guardrail {name} margin")
        by_name[name] = replace(known(name, "--guardrail"), role="guardrail", margin=value)
    for name in deteriorations:
        by_name[name] = replace(known(name, "--deterioration"), role="deterioration")
    for name in lower_is_better:
        by_name[name] = replace(known(name, "--lower-is-better"), higher_is_better=False)
    return list(by_name.values())


def winsorize_map(items: Sequence[str], variables: Mapping[str, object]) -> dict[str, float]:
    """`--winsorize col=0.99` as {variable: quantile}, checked against known variables."""
    out = {}
    for name, q in parse_pairs(items, "--winsorize"):
        if name not in variables:
            raise UsageError(
                f"--winsorize {name}: not a metric column (known: {', '.join(variables)})"
            )
        try:
            out[name] = check_fraction(float(q), f"--winsorize {name}")
        except ValueError:
            raise UsageError(f"--winsorize {name}={q}: the quantile must be a number") from None
    return out
