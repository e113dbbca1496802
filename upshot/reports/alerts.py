"""Alert rules over one week's report data, each with a severity.

| rule | severity | fires when |
|---|---|---|
| `uplift_negative` | critical | a class's CI on a key objective lies wholly on the harmful side |
| `optout_harm` | critical | opt-out uplift significantly over `governance.max_optout_harm` |
| `no_uplift_run` | critical | the week has no uplift estimates (warning: uplift not installed) |
| `no_experiment_run` | warning | an experiment live this week has no stored analysis |
| `no_weights` | info | the week has uplift estimates but no published weights |
| `optout_harm` | warning | only its point estimate is over it |
| `reach_drop` | critical | reachable users on a channel fell by more than `reach_drop_critical` |
| `reach_drop` | warning | ... by more than `report.reach_drop_warning` in a week |
| `srm` | critical | an experiment live this week has a sample ratio mismatch |
| `refutation_failed` | warning | a class's estimate failed a refutation check |
| `surrogacy_violated` | warning | the long-term backtest flags a class |
| `confounding_risk` | warning | a targeted class: no logged propensity, no pre-period covariate |
| `data_gap` | critical | a day of the week without sends or without outcome events |
| `late_data` | warning | rows of an already reported week arrived after its report |
| `incomplete_windows` | info | outcomes do not yet reach the end of the week's outcome windows |
| `estimation_failed` | warning | a class or experiment could not be estimated (`failed:...`) |
| `stage_failed` | critical | a stage of the weekly job failed as a whole |
| `weights_refused` | critical | the drift circuit breaker refused to publish the weights |
| `stage_warning` | warning | a stage ran but needs a person (no class weighted above 0) |
| `stage_unavailable` | info | a stage is not installed in this upshot |
| `quarantine` | warning | an input file's quarantined share was over `load.max_reject_rate` |

Rules are pure functions of `ReportData`; the same data gives the same alerts, in a
stable order (severity, rule, subject).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from upshot import period
from upshot.reports.tables import stable
from upshot.results import ResultsMixin

if TYPE_CHECKING:
    from upshot.config import Config
    from upshot.reports.data import ReportData

SEVERITIES = ("critical", "warning", "info")


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert; `value` and `threshold` are in the rule's units (None when none apply)."""

    rule: str
    severity: str
    subject: str
    message: str
    value: float | None = None
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity == {self.severity!r}, must be one of {SEVERITIES}")


@dataclass(frozen=True, slots=True)
class Alerts(ResultsMixin):
    """The alerts of one week, most severe first."""

    week: str
    alerts: tuple[Alert, ...]

    def to_dicts(self) -> list[dict[str, Any]]:
        return [
            {
                "severity": a.severity,
                "rule": a.rule,
                "subject": a.subject,
                "message": a.message,
                "value": stable(a.value),
                "threshold": stable(a.threshold),
            }
            for a in self.alerts
        ]

    def __iter__(self) -> Iterator[Alert]:
        return iter(self.alerts)

    def __len__(self) -> int:
        return len(self.alerts)

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for a in self.alerts if a.severity == s) for s in SEVERITIES}

    def at_or_above(self, level: str) -> tuple[Alert, ...]:
        """The alerts at `level` or more severe (`never`: none)."""
        if level == "never":
            return ()
        cut = SEVERITIES.index(level)
        return tuple(a for a in self.alerts if SEVERITIES.index(a.severity) <= cut)

    def document(self) -> dict[str, Any]:
        """The content of `alerts.json`."""
        return {"week": self.week, "counts": self.counts(), "alerts": self.to_dicts()}


def _fmt(value: float, binary: bool) -> str:
    return f"{value * 100:+.2f} pp" if binary else f"{value:+,.3g}"


def uplift_negative(data: ReportData) -> Iterator[Alert]:
    previous = period.shift(data.week, -1)
    before = {
        (r["message_class"], r["objective"]): r["significant"]
        for r in data.history
        if r["week"] == previous
    }
    for meta in data.objectives:
        if not meta["key"]:
            continue
        harmful = -1 if meta["higher_is_better"] else 1
        for r in data.uplift:
            if r["objective"] != meta["objective"] or r["significant"] != harmful:
                continue
            when = (
                "also last week"
                if before.get((r["message_class"], meta["objective"])) == harmful
                else "new this week"
            )
            bound = r["effect_ci_upper"] if harmful < 0 else r["effect_ci_lower"]
            yield Alert(
                "uplift_negative",
                "critical",
                r["message_class"],
                f"{r['message_class']} hurts {meta['objective']}: "
                f"{_fmt(r['effect'], meta['binary'])} per send, CI "
                f"[{_fmt(r['effect_ci_lower'], meta['binary'])}, "
                f"{_fmt(r['effect_ci_upper'], meta['binary'])}] ({when})",
                r["effect"],
                bound,
            )


def optout_harm(data: ReportData, objective: str, guardrail: float) -> Iterator[Alert]:
    """Critical when a class's opt-out uplift is significantly over the guardrail (the
    row's `over_guardrail`, decided in the report's one family: `significance.decide`),
    warning when only its point estimate is."""
    for r in data.uplift:
        effect = r["effect"]
        if r["objective"] != objective or effect is None:
            continue
        if r.get("over_guardrail"):
            severity, how = "critical", "significantly over"
        elif effect > guardrail:
            severity, how = "warning", "over, but not significantly,"
        else:
            continue
        yield Alert(
            "optout_harm",
            severity,
            r["message_class"],
            f"{r['message_class']} adds {effect:.2%} opt-outs per send (CI "
            f"{r['effect_ci_lower']:.2%} to {r['effect_ci_upper']:.2%}): {how} the guardrail "
            f"of {guardrail:.2%}",
            effect,
            guardrail,
        )


def missing_runs(data: ReportData) -> Iterator[Alert]:
    """What the week should have and does not: an uplift run (critical, or a warning when
    its part of upshot is not installed), published weights (info: the weights stage
    says why when it failed or was refused) and a stored analysis of each live experiment."""
    uplift = next((s for s in data.stages if s.get("stage") == "uplift"), {})
    if not data.sources.get("uplift_run_id") or not data.uplift:
        why = f" (uplift stage {uplift['status']}: {uplift.get('detail', '')})" if uplift else ""
        yield Alert(
            "no_uplift_run",
            "warning" if uplift.get("status") == "unavailable" else "critical",
            data.week,
            f"no uplift estimates for {data.week}{why}: the headline, the uplift section and "
            f"the weights have nothing to show; run `upshot run --week {data.week}`",
        )
    weights = next((s for s in data.stages if s.get("stage") == "weights"), {})
    if (
        data.uplift
        and data.weights_info.get("status") != "ok"
        and weights.get("status") not in ("failed", "refused")  # alerted as such already
    ):
        yield Alert(
            "no_weights",
            "info",
            data.week,
            f"no weights were published for {data.week}: a decision service keeps the "
            "previous file; `upshot weights export` publishes this week's",
        )
    for r in data.experiments:
        if r.get("status") == "no_results":
            yield Alert(
                "no_experiment_run",
                "warning",
                str(r["experiment_id"]),
                f"{r['experiment_id']} is live in {data.week} but has no stored analysis; "
                f"run `upshot experiments analyze {r['experiment_id']}`",
            )


def reach_drop(data: ReportData, warning: float, critical: float) -> Iterator[Alert]:
    previous = period.shift(data.week, -1)
    by_key = {(r["channel"], r["week"]): r for r in data.reach}
    for channel in sorted({r["channel"] for r in data.reach}):
        now, before = by_key.get((channel, data.week)), by_key.get((channel, previous))
        if not now or not before or not now.get("reachable") or not before.get("reachable"):
            continue
        change = now["reachable"] / before["reachable"] - 1
        if change <= -critical:
            severity, threshold = "critical", critical
        elif change <= -warning:
            severity, threshold = "warning", warning
        else:
            continue
        yield Alert(
            "reach_drop",
            severity,
            channel,
            f"reachable users on {channel} fell {-change:.1%} this week "
            f"({before['reachable']:,} → {now['reachable']:,})",
            change,
            -threshold,
        )


def srm(data: ReportData) -> Iterator[Alert]:
    seen = set()
    for r in data.experiments:
        status = r.get("srm_status")
        if status in (None, "ok", "insufficient_data") or r["experiment_id"] in seen:
            continue
        seen.add(r["experiment_id"])
        p = r.get("srm_pvalue")
        detail = f" (p = {p:.1e})" if p is not None else ""
        yield Alert(
            "srm",
            "critical",
            r["experiment_id"],
            f"{r['experiment_id']}: sample ratio mismatch ({status}){detail}; its effects "
            "cannot be trusted",
            p,
        )


def refutation_failed(data: ReportData) -> Iterator[Alert]:
    failed: dict[str, list[str]] = {}
    for r in data.uplift:
        if r["refute_passed"] is False:
            failed.setdefault(r["message_class"], []).append(r["objective"])
    for cls, objectives in sorted(failed.items()):
        yield Alert(
            "refutation_failed",
            "warning",
            cls,
            f"{cls}: the refutation checks failed on {', '.join(sorted(objectives))}; "
            "treat its estimates with caution",
        )


def confounding_risk(data: ReportData) -> Iterator[Alert]:
    """Classes estimated with status `confounding_risk`: targeted, no logged propensity, no
    past behaviour among the covariates, so targeting on activity biases the estimate."""
    risky: dict[str, list[str]] = {}
    for r in data.uplift:
        if r["status"] == "confounding_risk":
            risky.setdefault(r["message_class"], []).append(r["objective"])
    for cls, objectives in sorted(risky.items()):
        yield Alert(
            "confounding_risk",
            "warning",
            cls,
            f"{cls}: targeted without a logged propensity and without pre-period covariates; "
            f"its uplift on {', '.join(sorted(objectives))} may be confounded: log the "
            "decision service's propensity, or keep [uplift] pre_window above 0d",
        )


def data_gaps(data: ReportData) -> Iterator[Alert]:
    """One alert per table that has days without rows in the week, naming the days."""
    for kind in ("sends", "outcomes"):
        days = [r["day"] for r in data.daily if r[kind] == 0]
        if not days:
            continue
        when = "any day of the week" if len(days) == len(data.daily) else ", ".join(days)
        yield Alert(
            "data_gap",
            "critical",
            kind,
            f"no {kind} on {when}: a gap in the input data",
            float(len(days)),
        )


def late_data(data: ReportData) -> Iterator[Alert]:
    for r in data.late:
        yield Alert(
            "late_data",
            "warning",
            r["week"],
            f"{r['late_rows']:,} rows of {r['week']} arrived after its report; rerun with "
            f"`upshot run --week {data.week} --restate` to restate it",
            float(r["late_rows"]),
        )
    coverage = data.coverage or {}
    if coverage.get("last_outcome") and not coverage.get("windows_complete", True):
        yield Alert(
            "incomplete_windows",
            "info",
            data.week,
            f"outcomes reach {coverage['last_outcome']}, before the end of this week's "
            f"outcome windows ({coverage['windows_complete_at']}): the "
            "uplift of late-week decisions is understated until the data arrives",
        )


def stage_health(data: ReportData) -> Iterator[Alert]:
    for stage in data.stages:
        name, status = stage.get("stage", "?"), stage.get("status")
        if status == "refused":
            yield Alert(
                "weights_refused", "critical", name, f"{name} refused: {stage.get('detail', '')}"
            )
        if status == "failed":
            yield Alert(
                "stage_failed", "critical", name, f"stage {name} failed: {stage.get('detail', '')}"
            )
        elif status == "warning":
            yield Alert("stage_warning", "warning", name, f"{name}: {stage.get('detail', '')}")
        elif status == "unavailable":
            yield Alert(
                "stage_unavailable",
                "info",
                name,
                f"stage {name} skipped: {stage.get('detail', '')}",
            )
        for failure in stage.get("failures", ()):
            yield Alert(
                "estimation_failed",
                "warning",
                str(failure.get("subject")),
                f"{name}: {failure.get('subject')} could not be estimated: {failure.get('status')}",
            )


def quarantine(data: ReportData, gate: float) -> Iterator[Alert]:
    """Files behind the week whose quarantined share was over the load gate."""
    for r in data.over_gate:
        yield Alert(
            "quarantine",
            "warning",
            str(r["source"]),
            f"{r['source']}: {r['rows_quarantined']:,} of {r['rows_read']:,} rows quarantined "
            f"({r['rows_quarantined'] / r['rows_read']:.1%} > load.max_reject_rate {gate:.1%}); "
            "its good rows were loaded",
            r["rows_quarantined"] / r["rows_read"],
            gate,
        )


def failed_estimates(data: ReportData) -> Iterator[Alert]:
    """Classes whose uplift fit failed, when no weekly-job stage already reported them."""
    if any(s.get("stage") == "uplift" for s in data.stages):
        return
    failed = sorted(
        {
            (r["message_class"], r["status"])
            for r in data.uplift
            if str(r["status"]).startswith("failed")
        }
    )
    for cls, status in failed:
        yield Alert(
            "estimation_failed", "warning", cls, f"uplift: {cls} could not be estimated: {status}"
        )


def evaluate(data: ReportData, config: Config) -> Alerts:
    """Every rule over `data`, most severe first."""
    gov, rep = config.governance, config.report
    found = [
        *uplift_negative(data),
        *optout_harm(data, gov.optout_objective, gov.max_optout_harm),
        *missing_runs(data),
        *reach_drop(data, rep.reach_drop_warning, rep.reach_drop_critical),
        *srm(data),
        *refutation_failed(data),
        *surrogacy_violated(data),
        *confounding_risk(data),
        *data_gaps(data),
        *late_data(data),
        *stage_health(data),
        *quarantine(data, config.load.max_reject_rate),
        *failed_estimates(data),
    ]
    found.sort(key=lambda a: (SEVERITIES.index(a.severity), a.rule, a.subject))
    return Alerts(data.week, tuple(found))


def surrogacy_violated(data: ReportData) -> Iterator[Alert]:
    """A warning per class and outcome the backtest flags: its projection missed the
    realized long-term effects of its past windows (pooled) beyond the Bonferroni CI.
    `value` is the pooled miss in standard errors (None when the rows are hidden)."""
    import math

    flagged = sorted({(r["message_class"], r["outcome"]) for r in data.backtest if r["flagged"]})
    for cls, outcome in flagged:
        mine = [r for r in data.backtest if (r["message_class"], r["outcome"]) == (cls, outcome)]
        z = None
        if all(r["difference"] is not None and r["difference_se"] for r in mine):
            weights = [1 / r["difference_se"] ** 2 for r in mine]
            pooled = sum(w * r["difference"] for w, r in zip(weights, mine, strict=True))
            z = stable(pooled / sum(weights) * math.sqrt(sum(weights)))
        yield Alert(
            "surrogacy_violated",
            "warning",
            cls,
            f"{cls}: its projected {outcome} is not to be trusted: in {len(mine)} past "
            "window(s) the projection from its 7-day effects missed the long-term effect "
            "realized (long-term backtest)",
            value=z,
        )
