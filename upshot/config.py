"""`upshot.toml`: objectives, windows, governance, paths; typed and validated.

Every section is a frozen dataclass with defaults, so an empty or missing file is a
valid configuration. Unknown keys and values of the wrong kind are errors that name
the key, because a misspelt governance rate must never pass silently.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from upshot.errors import ConfigError

CONFIG_FILE = "upshot.toml"
DEFAULT_DB = "upshot.duckdb"
CHANNELS = ("push", "email", "in_app", "whatsapp", "sms")
Aggregation = Literal["any", "sum", "count", "distinct_days"]
_WINDOW = re.compile(r"^\s*(\d+)\s*([hdw])\s*$")
_UNITS = {"h": ("hours", 1 / 24), "d": ("days", 1.0), "w": ("days", 7.0)}


def parse_window(text: str, where: str) -> float:
    """A window such as `7d`, `12h` or `2w` in days."""
    match = _WINDOW.match(text)
    if not match:
        raise ConfigError(f"{where} == {text!r}, must look like 7d, 12h or 2w")
    return int(match.group(1)) * _UNITS[match.group(2)][1]


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B)\s*$", re.IGNORECASE)


def parse_size(text: str, where: str) -> int:
    """A size such as `6GB` (10^9 bytes, as DuckDB counts) or `512MiB` (2^20) in bytes."""
    match = _SIZE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"{where} == {text!r}, must look like 6GB, 512MB or 4GiB")
    unit = match.group(2).upper()
    base = 1024 if "I" in unit else 1000
    return int(float(match.group(1)) * base ** ("KMGT".index(unit[0]) + 1))


@dataclass(frozen=True, slots=True)
class Warehouse:
    path: str = DEFAULT_DB
    memory_limit: str = "4GB"
    temp_directory: str = ".upshot_tmp"
    lock_timeout: float = 30.0
    threads: int = 0  # 0: DuckDB's default (all cores)


@dataclass(frozen=True, slots=True)
class Lake:
    """`[lake] path`: read the contract tables in place from `<path>/sends/`, ... (see
    upshot.lake) instead of the warehouse's loaded tables; `--lake DIR` overrides it."""

    path: str | None = None


@dataclass(frozen=True, slots=True)
class Engine:
    """Where the population-wide passes run (see docs/engines.md): the embedded DuckDB, or
    Spark at `spark_master` (`local[2]`, `spark://host:7077`, a Spark Connect
    `sc://host:15002`). Only aggregates and capped samples come back to this process."""

    kind: Literal["duckdb", "spark"] = "duckdb"
    spark_master: str = "local[2]"
    # the driver holds only aggregates and samples; a local master runs its executors in it
    spark_driver_memory: str = "1g"


@dataclass(frozen=True, slots=True)
class Load:
    max_reject_rate: float = 0.01
    naive_timezone: str = "UTC"
    channels: tuple[str, ...] = CHANNELS
    # where `upshot run` finds new input files, per table (paths, globs or s3:// URLs)
    sources: dict[str, str] = field(default_factory=dict)
    # a row with a longer field is quarantined as field_too_large
    max_field_size: str = "1MiB"
    # timestamps before this date, or later than now plus max_future, are quarantined
    earliest_timestamp: str = "2000-01-01"
    max_future: str = "1d"
    # per table, contract column = the files' column, e.g. columns.sends.decided_at = "sent_at"
    columns: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Objective:
    """An outcome measured after each decision: `aggregation` of `events` inside `window`."""

    events: tuple[str, ...]
    aggregation: Aggregation = "any"
    window: str = "7d"

    @property
    def window_days(self) -> float:
        return parse_window(self.window, "window")

    @property
    def binary(self) -> bool:
        return self.aggregation == "any"


DEFAULT_OBJECTIVES: dict[str, Objective] = {
    "conversion": Objective(("subscription_start",), "any", "7d"),
    "engagement": Objective(("stream_minutes",), "sum", "7d"),
    "retention": Objective(("active_day",), "distinct_days", "7d"),
    "reachability": Objective(("push_opt_out", "email_unsubscribe"), "any", "7d"),
}


@dataclass(frozen=True, slots=True)
class Metric:
    """An experiment metric; `pre_window` adds its pre-assignment value as a CUPED covariate."""

    events: tuple[str, ...]
    aggregation: Aggregation = "sum"
    window: str = "14d"
    pre_window: str | None = None
    role: Literal["success", "guardrail", "deterioration"] = "success"
    margin: float = 0.0  # relative non-inferiority margin for guardrails, e.g. 0.02
    higher_is_better: bool = True
    winsorize: float | None = None  # upper percentile, e.g. 0.99


@dataclass(frozen=True, slots=True)
class Ratio:
    numerator: str
    denominator: str
    role: Literal["success", "guardrail", "deterioration"] = "success"
    margin: float = 0.0
    higher_is_better: bool = True


DEFAULT_METRICS: dict[str, Metric] = {
    "conversions": Metric(("subscription_start",), "any", "14d", role="success"),
    "minutes": Metric(("stream_minutes",), "sum", "14d", pre_window="14d", role="success"),
    "active_days": Metric(
        ("active_day",), "distinct_days", "14d", "14d", role="guardrail", margin=0.02
    ),
    "opens": Metric(("message_open",), "count", "14d", role="success"),
    "opt_outs": Metric(
        ("push_opt_out", "email_unsubscribe"),
        "any",
        "14d",
        role="deterioration",
        higher_is_better=False,
    ),
}
DEFAULT_RATIOS: dict[str, Ratio] = {
    "minutes_per_active_day": Ratio("minutes", "active_days", role="guardrail", margin=0.02),
}


@dataclass(frozen=True, slots=True)
class Experiments:
    alpha: float = 0.05
    power: float = 0.8
    srm_alpha: float = 0.001
    min_sample: int = 100
    correction: Literal["holm", "bonferroni", "bh", "none"] = "holm"
    metrics: dict[str, Metric] = field(default_factory=lambda: dict(DEFAULT_METRICS))
    ratios: dict[str, Ratio] = field(default_factory=lambda: dict(DEFAULT_RATIOS))
    control: str = "control"  # the variant label every other arm is compared with
    # regression adjustment with the pre-period covariates: pooled-slope CUPED or Lin (2013)
    adjust: Literal["cuped", "lin", "none"] = "cuped"
    test: Literal["welch", "z"] = "welch"  # Welch t, or its large-sample normal version
    # one-sided inferiority test run on every metric by `decide`; its false alarms cost power,
    # so it is stricter than alpha (Schultzberg, Ankargren & Frånberg 2024, section 4)
    deterioration_alpha: float = 0.01
    sequential: bool = False  # always-valid confidence sequences instead of fixed-horizon CIs
    sequential_tuning: float = 5000.0  # users (both arms) where the sequence is tightest


@dataclass(frozen=True, slots=True)
class Uplift:
    """How `upshot uplift` estimates the effect of each message class (see upshot.attribution)."""

    estimator: Literal["linear_dml", "dr_learner", "causal_forest"] = "linear_dml"
    nuisance: Literal["lightgbm", "linear"] = "lightgbm"
    folds: int = 3
    min_decisions: int = 200
    segments: tuple[str, ...] = ("country", "product_tier", "tenure_band")
    min_segment_size: int = 200
    propensity_clip: float = 0.01
    # more decisions than this beyond the clip bounds: the class has no overlap
    max_clipped_share: float = 0.1
    # warehouse path: each objective's value in this window before the decision joins the
    # covariates as `pre_<objective>`, as experiments do for CUPED; "0d" switches it off
    pre_window: str = "28d"
    # the refuters re-run the full estimator 1 + 3 x refute_simulations times on this sample
    refute_sample: int = 5_000
    refute_simulations: int = 5
    max_rows_per_fit: int = 2_000_000  # a larger class is subsampled (seeded) before fitting
    # rows the nuisance models of each cross-fitting fold train on (0: all), both arms'
    # outcome models together. They only affect the variance when the propensity is right:
    # at 100k decisions per class, 30k instead of all 67k widened the CIs by 0.1-0.6%
    # (benchmarks/bench_uplift.py data) and made the per-arm models ~2x cheaper to train
    nuisance_max_rows: int = 30_000
    alpha: float = 0.05
    calibration_groups: int = 4
    sensitivity_strength: float = 0.05  # c_y = c_t of the reported sensitivity interval
    seed: int = 0
    jobs: int = 1
    backend: Literal["local", "ray"] = "local"
    # a Ray cluster to run the fits on (host:port, ray://host:port or "auto");
    # none: a private local Ray for the run (with backend = "ray")
    ray_address: str | None = None
    # the most memory one class's fit may use, e.g. "6GB": the worker's whole data segment,
    # its imports (~0.5GB) included. A fit over it fails its class with
    # failed:memory_budget and the run goes on; on Ray it is also the task's reservation.
    # none: no budget (a fit the machine cannot hold is then killed by the kernel)
    memory_per_task: str | None = None

    @property
    def pre_window_days(self) -> float:
        """`pre_window` in days; 0 when pre-period covariates are off."""
        return parse_window(self.pre_window, "uplift.pre_window")

    @property
    def memory_per_task_bytes(self) -> int:
        """`memory_per_task` in bytes; 0 when there is no budget."""
        if self.memory_per_task is None:
            return 0
        return parse_size(self.memory_per_task, "uplift.memory_per_task")

    def __post_init__(self) -> None:
        checks = (
            ("folds", self.folds >= 2, "must be >= 2"),
            ("min_decisions", self.min_decisions >= 1, "must be >= 1"),
            ("min_segment_size", self.min_segment_size >= 1, "must be >= 1"),
            ("propensity_clip", 0 <= self.propensity_clip < 0.5, "must be in [0, 0.5)"),
            ("max_clipped_share", 0 <= self.max_clipped_share <= 1, "must be in [0, 1]"),
            ("refute_sample", self.refute_sample >= 100, "must be >= 100"),
            ("refute_simulations", self.refute_simulations >= 2, "must be >= 2"),
            ("max_rows_per_fit", self.max_rows_per_fit >= 100, "must be >= 100"),
            ("nuisance_max_rows", self.nuisance_max_rows >= 0, "must be >= 0"),
            ("alpha", 0 < self.alpha < 1, "must be in (0, 1)"),
            ("calibration_groups", self.calibration_groups >= 2, "must be >= 2"),
            ("sensitivity_strength", 0 <= self.sensitivity_strength < 1, "must be in [0, 1)"),
            ("jobs", self.jobs >= 1, "must be >= 1"),
        )
        for name, ok, must in checks:
            if not ok:
                raise ConfigError(f"uplift.{name} == {getattr(self, name)!r}, {must}")
        _ = self.memory_per_task_bytes  # a malformed size fails here, not mid-run
        _ = self.pre_window_days  # so does a malformed window


DEFAULT_LONGTERM_OUTCOMES: dict[str, Objective] = {
    "retention_180d": Objective(("active_day",), "distinct_days", "180d"),
    "subscribed_180d": Objective(("subscription_start",), "any", "180d"),
}


@dataclass(frozen=True, slots=True)
class LongTerm:
    """The long-term outcomes `upshot uplift` projects with the surrogate index (see
    upshot.attribution.longterm): h(S, X) = E[outcome | surrogates, covariates] is learned
    on *history* decisions, old enough that the outcome is observed, and each class's
    effect on h in the window analysed is its projected long-term effect."""

    # measured after each decision like objectives: an aggregation of events in a window
    outcomes: dict[str, Objective] = field(default_factory=lambda: dict(DEFAULT_LONGTERM_OUTCOMES))
    # short-term objectives that carry the effect (empty: every configured objective)
    surrogates: tuple[str, ...] = ()
    # per outcome, the surrogate the backtest's naive "7-day x constant" baseline scales;
    # unnamed: the surrogate counting the outcome's events (retention_180d: retention),
    # else the first surrogate (`LongTerm.primary_of`)
    primary: dict[str, str] = field(default_factory=dict)
    # the pre_<objective> covariates (uplift.pre_window) join the users' columns in X
    pre_period: bool = True
    # history: decisions made in [cut - history, cut), cut = the window's start minus the
    # longest outcome window, so that every history outcome is complete
    history: str = "52w"
    min_history: int = 1_000  # fewer history decisions: no projection (status insufficient_data)
    max_history: int = 200_000  # a larger history is subsampled (seeded)
    folds: int = 5
    alpha: float = 0.05
    seed: int = 0
    # the backtest: each class's history decisions projected with h learned on the other
    # classes, against their realized outcome; fewer decisions per arm: not_backtested
    backtest: bool = True
    min_backtest_arm: int = 50

    @property
    def history_days(self) -> float:
        return parse_window(self.history, "longterm.history")

    @property
    def horizon_days(self) -> float:
        """The longest outcome window, in days (0 without outcomes)."""
        return max((o.window_days for o in self.outcomes.values()), default=0.0)

    def primary_of(self, outcome: str, objectives: dict[str, Objective]) -> str:
        """The named primary surrogate of `outcome` (see `primary`), among `objectives`
        (the surrogates, in order)."""
        if outcome in self.primary:
            return self.primary[outcome]
        events = set(self.outcomes[outcome].events)
        same = [name for name, o in objectives.items() if set(o.events) == events]
        return (same or list(objectives))[0]

    def __post_init__(self) -> None:
        checks = (
            ("min_history", self.min_history >= 10, "must be >= 10"),
            ("max_history", self.max_history >= self.min_history, "must be >= min_history"),
            ("folds", self.folds >= 2, "must be >= 2"),
            ("alpha", 0 < self.alpha < 1, "must be in (0, 1)"),
            ("min_backtest_arm", self.min_backtest_arm >= 2, "must be >= 2"),
        )
        for name, ok, must in checks:
            if not ok:
                raise ConfigError(f"longterm.{name} == {getattr(self, name)!r}, {must}")
        if self.history_days <= 0:
            raise ConfigError(f"longterm.history == {self.history!r}, must be > 0")


@dataclass(frozen=True, slots=True)
class Governance:
    """How objective uplifts become value weights; versioned inside every weights file."""

    # value units per unit of uplift; reachability is per opt-out and negative
    rates: dict[str, float] = field(
        default_factory=lambda: {
            "conversion": 100.0,
            "engagement": 0.05,
            "retention": 1.0,
            "reachability": -25.0,
        }
    )
    # "derived": per channel, -(expected future sends per user × value per send)
    reachability_rate: Literal["manual", "derived"] = "manual"
    optout_objective: str = "reachability"
    reach_horizon_weeks: float = 26.0
    max_optout_harm: float = 0.002  # upper CI bound of the opt-out uplift, per send
    min_treated: int = 500
    min_control: int = 100
    channel_caps: dict[str, float] = field(default_factory=dict)  # largest weight per channel
    shrinkage: bool = True
    shrinkage_method: Literal["reml", "moments"] = "reml"
    shrinkage_min_classes: int = 3  # fewer in a channel: shrink toward all classes instead
    alpha: float = 0.05
    drift_max_share: float = 0.3
    drift_threshold: float = 0.5
    keep_versions: int = 10
    directory: str = "weights"
    policy_version: str = "1"  # the owners' label; a hash of the whole section is kept too
    ope_policy: Literal["positive", "rank"] = "positive"
    ope_cap: int = 3  # sends per user and ISO week under the "rank" policy

    def __post_init__(self) -> None:
        checks = (
            ("max_optout_harm", self.max_optout_harm >= 0, "must be >= 0"),
            ("reach_horizon_weeks", self.reach_horizon_weeks > 0, "must be > 0"),
            ("min_treated", self.min_treated >= 1, "must be >= 1"),
            ("min_control", self.min_control >= 1, "must be >= 1"),
            ("shrinkage_min_classes", self.shrinkage_min_classes >= 2, "must be >= 2"),
            ("alpha", 0 < self.alpha < 1, "must be in (0, 1)"),
            ("drift_max_share", 0 <= self.drift_max_share <= 1, "must be in [0, 1]"),
            ("drift_threshold", self.drift_threshold > 0, "must be > 0"),
            ("keep_versions", self.keep_versions >= 1, "must be >= 1"),
            ("ope_cap", self.ope_cap >= 1, "must be >= 1"),
        )
        for name, ok, must in checks:
            if not ok:
                raise ConfigError(f"governance.{name} == {getattr(self, name)!r}, {must}")
        for channel, cap in self.channel_caps.items():
            if cap < 0:
                raise ConfigError(f"governance.channel_caps.{channel} == {cap!r}, must be >= 0")


@dataclass(frozen=True, slots=True)
class Report:
    """The weekly job and report (`upshot run`, `upshot report weekly`), see upshot.reports."""

    directory: str = "reports"
    # decides which ISO week is "the last complete one"; weeks themselves are UTC, like uplift's
    business_timezone: str = "UTC"
    k_anonymity: int = 10  # cells about fewer users than this are suppressed
    key_objectives: tuple[str, ...] = ("conversion", "engagement")
    # a class is called significant on an objective (colour, alerts) after this correction
    # across every class x objective of the week: 32 tests at 5% would otherwise flag ~1.6
    # classes a week by chance
    correction: Literal["holm", "bonferroni", "bh", "none"] = "holm"
    history_weeks: int = 12  # weeks of uplift history and reachability the report shows
    # reachability per channel: the users column holding the opt-in at the start, and the
    # outcome events that end it
    reach_opt_in: dict[str, str] = field(
        default_factory=lambda: {"push": "push_opt_in", "email": "email_opt_in"}
    )
    reach_opt_out: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {"push": ("push_opt_out",), "email": ("email_unsubscribe",)}
    )
    # week-over-week relative drop in reachable users on a channel that raises an alert
    reach_drop_warning: float = 0.02
    reach_drop_critical: float = 0.05
    # how the report decomposes each live experiment's effects: a funnel of experiment
    # metrics (opens per user x conversions per open), and a mix/rate split of one metric
    # over a users column; empty to skip either
    funnel: tuple[str, ...] = ("opens", "conversions")
    mix_metric: str = "minutes"
    mix_segment: str = "country"
    # share of classes (or of experiments) whose estimation fails before `upshot run` fails
    max_failed_share: float = 0.25
    fail_on: Literal["critical", "warning", "never"] = "critical"

    def __post_init__(self) -> None:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(self.business_timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"report.business_timezone == {self.business_timezone!r}, must be an IANA "
                "time zone such as Europe/Berlin"
            ) from None
        checks = (
            ("k_anonymity", self.k_anonymity >= 1, "must be >= 1"),
            ("history_weeks", self.history_weeks >= 1, "must be >= 1"),
            ("reach_drop_warning", 0 < self.reach_drop_warning < 1, "must be in (0, 1)"),
            ("reach_drop_critical", 0 < self.reach_drop_critical < 1, "must be in (0, 1)"),
            ("max_failed_share", 0 <= self.max_failed_share <= 1, "must be in [0, 1]"),
        )
        for name, ok, must in checks:
            if not ok:
                raise ConfigError(f"report.{name} == {getattr(self, name)!r}, {must}")
        if self.reach_drop_critical < self.reach_drop_warning:
            raise ConfigError(
                f"report.reach_drop_critical == {self.reach_drop_critical!r}, must be >= "
                f"reach_drop_warning ({self.reach_drop_warning!r})"
            )


@dataclass(frozen=True, slots=True)
class Config:
    warehouse: Warehouse = field(default_factory=Warehouse)
    engine: Engine = field(default_factory=Engine)
    load: Load = field(default_factory=Load)
    lake: Lake = field(default_factory=Lake)
    objectives: dict[str, Objective] = field(default_factory=lambda: dict(DEFAULT_OBJECTIVES))
    experiments: Experiments = field(default_factory=Experiments)
    uplift: Uplift = field(default_factory=Uplift)
    governance: Governance = field(default_factory=Governance)
    longterm: LongTerm = field(default_factory=LongTerm)
    report: Report = field(default_factory=Report)
    source: str | None = None  # the file it was read from, for provenance

    def fingerprint(self) -> str:
        """A stable hash of the effective configuration, recorded with every output."""
        import hashlib
        import json

        body = dataclasses.asdict(self)
        body.pop("source")
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _convert(tp: Any, value: Any, where: str) -> Any:
    """`value` as type `tp`, or a ConfigError that names `where`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, where)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where} == {value!r}, must be one of {', '.join(map(str, args))}")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{where} == {value!r}, must be a list")
        return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table")
        return {str(k): _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and type(value) is tp:
        return value
    raise ConfigError(f"{where} == {value!r}, must be {getattr(tp, '__name__', tp)}")


def _build(cls: Any, table: Any, where: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - names)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(names))})"
        )
    kwargs = {k: _convert(hints[k], v, f"{where}.{k}" if where else k) for k, v in table.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required key is missing
        raise ConfigError(f"{where}: {exc}") from None


def _check_longterm(config: Config) -> None:
    lt = config.longterm
    for name, outcome in lt.outcomes.items():
        parse_window(outcome.window, f"longterm.outcomes.{name}.window")
        if not outcome.events:
            raise ConfigError(f"longterm.outcomes.{name}.events is empty")
        if name in config.objectives:
            raise ConfigError(f"longterm.outcomes.{name}: an objective has that name; rename it")
    for name in lt.surrogates:
        if name not in config.objectives:
            known = ", ".join(config.objectives) or "none"
            raise ConfigError(
                f"longterm.surrogates: {name!r} is not an objective (objectives: {known})"
            )
    surrogates = surrogates_of(config)
    for key, primary in lt.primary.items():
        if key not in lt.outcomes:
            raise ConfigError(f"longterm.primary.{key}: not a longterm outcome")
        if primary not in surrogates:
            raise ConfigError(
                f"longterm.primary.{key} == {primary!r}, must be a surrogate "
                f"({', '.join(surrogates)})"
            )


def _check(config: Config) -> Config:
    for name, objective in config.objectives.items():
        parse_window(objective.window, f"objectives.{name}.window")
        if not objective.events:
            raise ConfigError(f"objectives.{name}.events is empty")
    for name, metric in config.experiments.metrics.items():
        parse_window(metric.window, f"experiments.metrics.{name}.window")
        if metric.pre_window:
            parse_window(metric.pre_window, f"experiments.metrics.{name}.pre_window")
    _check_longterm(config)
    parse_size(config.load.max_field_size, "load.max_field_size")
    parse_window(config.load.max_future, "load.max_future")
    try:
        date.fromisoformat(config.load.earliest_timestamp)
    except ValueError:
        raise ConfigError(
            f"load.earliest_timestamp == {config.load.earliest_timestamp!r}, must be a date "
            "such as 2000-01-01"
        ) from None
    tables = ("sends", "outcomes", "users", "assignments")
    for table in config.load.columns:
        if table not in tables:
            raise ConfigError(f"load.columns.{table}: not a table ({', '.join(tables)})")
    if not 0 <= config.load.max_reject_rate <= 1:
        raise ConfigError(
            f"load.max_reject_rate == {config.load.max_reject_rate}, must be in [0, 1]"
        )
    if not 0 < config.experiments.alpha < 1:
        raise ConfigError(f"experiments.alpha == {config.experiments.alpha}, must be in (0, 1)")
    return config


def surrogates_of(config: Config) -> tuple[str, ...]:
    """The long-term surrogates: `longterm.surrogates`, or every configured objective."""
    return config.longterm.surrogates or tuple(config.objectives)


def load_config(path: str | Path | None = None) -> Config:
    """Read `path`, else `$UPSHOT_CONFIG`, else `./upshot.toml` when it exists, else return
    the defaults: the CLI (`--config` is `path`) and the Python API resolve it alike."""
    named = path or os.environ.get("UPSHOT_CONFIG") or None
    candidate = Path(named) if named else Path(CONFIG_FILE)
    if not candidate.exists():
        if named:
            raise ConfigError(f"{candidate}: no such config file")
        return Config()
    try:
        data = tomllib.loads(candidate.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{candidate}: {exc}") from None
    data["source"] = str(candidate)
    config = _build(Config, data, "")
    return _check(config)


def resolve_db(config: Config, cli_db: str | None) -> str:
    """`--db` beats `UPSHOT_DB`, which beats `upshot.toml`, which beats `upshot.duckdb`."""
    return cli_db or os.environ.get("UPSHOT_DB") or config.warehouse.path
