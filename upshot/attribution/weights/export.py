"""`upshot weights`: from one uplift run to a published, verified weights version.

    load_run      the run's estimates, covariances, data window and channel volumes (SQL)
    candidate     weights and the weights-file document (`valuation`), not yet published
    evaluate_candidate   off-policy estimate of the candidate on the logged decisions (`ope`)
    export        the above, drift against the published version, the circuit breaker,
                  atomic publication (`weightfile`) and the journal row in the warehouse

Reproducibility: `generated_at` is when the uplift estimates were made, not the export's
clock, and the version is a hash of the content, so the same run and policy always give
byte-identical files; the export's own time is kept only in the warehouse journal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from upshot import period, store
from upshot.attribution.weights.longterm import priced, projections
from upshot.attribution.weights.policy import Drift, ReachStats, drift, policy_hash
from upshot.attribution.weights.weightset import WeightSet, build_document, compute_weights
from upshot.errors import RefusedError, UsageError
from upshot.period import Period, as_instant
from upshot.sql import query

if TYPE_CHECKING:
    import duckdb

    from upshot.attribution.weights.ope import Evaluation, Policy
    from upshot.attribution.weights.publish import Published
    from upshot.config import Config


@dataclass(frozen=True, slots=True)
class RunInputs:
    """What one uplift run left in the warehouse, as plain rows."""

    run_id: str
    estimates: list[dict[str, Any]]
    covariance: list[dict[str, Any]]
    window: Period
    generated_at: datetime
    source: dict[str, Any]
    reach: dict[str, ReachStats]
    projected: list[dict[str, Any]] = field(default_factory=list)  # `weights.longterm`


@dataclass(frozen=True, slots=True)
class Candidate:
    """Weights not yet published: the computed set, its document and its segment Parquet."""

    inputs: RunInputs
    weights: WeightSet
    document: dict[str, Any]
    segments: bytes

    @property
    def version(self) -> str:
        return str(self.document["weights_version"])


@dataclass(frozen=True, slots=True)
class Export:
    """The outcome of `export`: `published` is None under `--check` or when refused."""

    candidate: Candidate
    drift: Drift
    evaluation: Evaluation | None
    published: Published | None
    forced: bool
    refused: bool
    directory: Path


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def load_run(con: duckdb.DuckDBPyConnection, *, run_id: str | None = None) -> RunInputs:
    """The estimates of `run_id`, or of the newest finished uplift run."""
    if run_id is None:
        found = con.execute(query("weights", "latest-uplift-run")).fetchone()
        if found is None:
            raise UsageError("no uplift estimates in the warehouse yet; run `upshot uplift` first")
        run_id = str(found[0])
    estimates = _rows(con, query("weights", "run-estimates"), {"run_id": run_id})
    if not estimates:
        raise UsageError(f"--run-id == {run_id!r}: no uplift estimates with that run id")
    covariance = _rows(con, query("weights", "run-covariance"), {"run_id": run_id})
    info = _rows(con, query("weights", "run-info"), {"run_id": run_id})
    details = _details(info[0]["details"]) if info else {}
    window = _window(con, estimates, details)
    reach = {}
    if window.start is not None and window.end is not None:
        weeks = (window.end - window.start).total_seconds() / (7 * 86400)
        params = {"start": window.start, "end": window.end}
        for row in _rows(con, query("weights", "channel-reach"), params):
            reach[str(row["channel"])] = ReachStats(int(row["sends"]), int(row["users"]), weeks)
    estimators = sorted({str(r["estimator"]) for r in estimates if r.get("estimator")})
    source = {
        "uplift_run_id": run_id,
        "estimator": ",".join(estimators) or None,
        "inputs_fingerprint": info[0]["inputs_fingerprint"] if info else None,
        "seed": int(info[0]["seed"]) if info and info[0]["seed"] is not None else None,
    }
    generated_at = max(r["created_at"] for r in estimates).astimezone(UTC)
    projected = projections(con, run_id)
    return RunInputs(run_id, estimates, covariance, window, generated_at, source, reach, projected)


def _details(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            return {}
    return raw if isinstance(raw, dict) else {}


def _window(
    con: duckdb.DuckDBPyConnection, estimates: list[dict[str, Any]], details: dict[str, Any]
) -> Period:
    """The run's ISO week, else the start/end it recorded, else the whole days it covers.
    A run of a trailing window (`upshot run --weeks N`, N > 1) is labelled with its last
    week but covers the start/end it recorded."""
    weeks = {r["week"] for r in estimates if r.get("week")}
    if len(weeks) == 1 and int(details.get("weeks") or 1) == 1:
        week = weeks.pop()
        return Period.of_week(week)
    if details.get("start") or details.get("end"):
        return Period(
            as_instant(details.get("start"), "runs.details.start"),
            as_instant(details.get("end"), "runs.details.end"),
        )
    classes = sorted({str(r["message_class"]) for r in estimates})
    span = con.execute(query("weights", "decision-span"), {"classes": classes}).fetchone()
    first, last = span if span else (None, None)
    if first is None or last is None:
        return Period(None, None)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    return Period(start, end)


def candidate(inputs: RunInputs, config: Config, *, version: str | None = None) -> Candidate:
    """The weights of one run under `config.governance`, ready to publish."""
    from upshot.attribution.weights.publish import segments_parquet

    governance = config.governance
    estimates = priced(inputs.estimates, inputs.projected, governance.rates)
    ws = compute_weights(estimates, inputs.covariance, governance, reach=inputs.reach)
    objectives = sorted({str(r["objective"]) for r in inputs.estimates})
    ordered = sorted(ws.segments, key=lambda s: (s.message_class, s.segment))
    segments = segments_parquet([s.row() for s in ordered], objectives)
    document = build_document(
        ws,
        governance=governance,
        generated_at=inputs.generated_at,
        window=inputs.window,
        source=inputs.source,
        segments=segments,
        version=version,
    )
    return Candidate(inputs, ws, document, segments)


@dataclass(frozen=True, slots=True)
class Subject:
    """What an off-policy evaluation scores: class weights (value units per send), the
    rates per channel and objective that turn outcomes into value, and the data window."""

    version: str
    weights: dict[str, float]
    rates: dict[str, dict[str, float]]
    window: Period


def candidate_subject(cand: Candidate) -> Subject:
    ws = cand.weights
    rates = {c.channel: ws.rates_for(c.channel) for c in ws.classes if c.channel}
    return Subject(cand.version, ws.weights(), rates, cand.inputs.window)


def document_subject(document: dict[str, Any]) -> Subject:
    """The subject of a published weights document (as `upshot.read_weights` returns it)."""
    policy, bounds = document["policy"], document["window"]
    channels = {c["channel"] for c in document["classes"] if c["channel"]}
    return Subject(
        document["weights_version"],
        {c["message_class"]: c["weight"] for c in document["classes"]},
        {ch: {**policy["rates"], **policy["channel_rates"].get(ch, {})} for ch in channels},
        Period(
            as_instant(bounds["start"], "window.start"), as_instant(bounds["end"], "window.end")
        ),
    )


def next_window(window: Period) -> Period:
    """The decisions the uplift did not use: the period of the same length right after
    `window` (the next ISO week after a week); unbounded when `window` is."""
    if window.start is None or window.end is None:
        return Period(None, None)
    if window.week is not None:
        return Period.of_week(period.shift(window.week, 1))
    return Period(window.end, window.end + (window.end - window.start))


def split_of(window: Period, estimated: Period) -> str:
    """`in_sample` when `window` overlaps the estimates' `estimated`, else `given`."""
    if estimated.start is None or estimated.end is None:
        return "in_sample"
    before = window.end is not None and window.end <= estimated.start
    after = window.start is not None and window.start >= estimated.end
    return "given" if before or after else "in_sample"


def evaluate_candidate(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    cand: Candidate,
    *,
    policy: Policy | None = None,
    cap: int | None = None,
) -> Evaluation | None:
    """The off-policy estimate of sending by the candidate's weights, on the decisions of
    the window after the run's (out of sample: estimating and evaluating on the same
    decisions rewards the classes whose uplift was overestimated by chance)."""
    subject = candidate_subject(cand)
    return evaluate_policy(
        con,
        config,
        subject.weights,
        subject.rates,
        next_window(subject.window),
        policy=policy,
        cap=cap,
        split="next_window",
    )


def evaluate_policy(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    weights: dict[str, float],
    rates: dict[str, dict[str, float]],
    window: Period,
    *,
    policy: Policy | None = None,
    cap: int | None = None,
    split: str = "given",
) -> Evaluation | None:
    """Off-policy estimate of ranking by `weights` (class → weight) on the logged decisions
    of `window`, with `rates[channel][objective]` for the value; None when no rated
    objective is configured to be measured or there is no class. `split` is recorded as
    given; without a bounded window, or without a logged decision with a propensity in
    it, the evaluation is `not_evaluated`."""
    from dataclasses import replace

    import polars as pl

    from upshot.attribution.uplift.frames import decision_frame
    from upshot.attribution.weights.ope import Evaluation, evaluate

    rated = {k for r in rates.values() for k, v in r.items() if v != 0}
    objectives = [k for k in config.objectives if k in rated]
    if not objectives or not weights:
        return None
    chosen = policy or config.governance.ope_policy
    cap = (cap or config.governance.ope_cap) if chosen == "rank" else None
    bounds = {"start": _iso(window.start), "end": _iso(window.end)}
    if window.start is None or window.end is None:
        reason = "the estimates have no data window, so no later decisions to evaluate on"
        return Evaluation.not_evaluated(chosen, cap, split, bounds, reason)
    frame = decision_frame(
        con,
        config,
        classes=sorted(weights),
        start=window.start,
        end=window.end,
        objectives=objectives,
    )
    if frame.filter(pl.col("propensity").is_not_null()).height == 0:
        reason = (
            f"no logged decision with a propensity in [{bounds['start']}, {bounds['end']}) "
            "for these classes; evaluate again once that window is loaded"
        )
        return Evaluation.not_evaluated(chosen, cap, split, bounds, reason)
    result = evaluate(
        frame,
        weights,
        rates,
        policy=chosen,
        cap=cap,
        alpha=config.governance.alpha,
        clip=config.uplift.propensity_clip,
        seed=config.uplift.seed,
    )
    return replace(result, split=split, window=bounds)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def previous_weights(directory: Path) -> tuple[str | None, dict[str, float] | None]:
    """The published version and its class weights, verified; (None, None) if none yet."""
    from upshot.attribution.weights.read import LATEST, read

    if not (directory / LATEST).exists():
        return None, None
    document = read(directory)
    return document["weights_version"], {
        c["message_class"]: c["weight"] for c in document["classes"]
    }


def export(
    config: Config,
    db_path: str,
    *,
    run_id: str | None = None,
    version: str | None = None,
    directory: str | Path | None = None,
    check: bool = False,
    force: bool = False,
    evaluate: bool = True,
    policy: Policy | None = None,
    cap: int | None = None,
) -> Export:
    """Compute the weights of an uplift run, compare them with the published version and,
    unless `check` or the circuit breaker refuses, publish them and journal the export.

    A published version that fails verification blocks the comparison: RefusedError,
    unless `force` (then the comparison is skipped and the export is recorded as forced).
    """
    from upshot.attribution.weights.publish import publish
    from upshot.attribution.weights.reconcile import reconcile

    governance = config.governance
    folder = Path(directory or governance.directory)
    if not check:
        reconcile(config, db_path, folder)
    with store.reading(config, db_path) as con:
        cand = candidate(load_run(con, run_id=run_id), config, version=version)
        evaluation = (
            evaluate_candidate(con, config, cand, policy=policy, cap=cap) if evaluate else None
        )
    unverified = False
    try:
        previous_version, previous = previous_weights(folder)
    except RefusedError as exc:
        if not force:
            raise RefusedError(
                f"the published weights failed verification ({exc}); repair them or pass --force"
            ) from None
        previous_version, previous, unverified = None, None, True
    moved = drift(
        previous,
        cand.weights.weights(),
        threshold=governance.drift_threshold,
        max_share=governance.drift_max_share,
        previous_version=previous_version,
    )
    forced = force and (moved.tripped or unverified)
    refused = moved.tripped and not force
    published = None
    if refused and not check:
        _journal(config, db_path, cand, None, moved, evaluation, forced=False)
    if not check and not refused:
        entry = _manifest_entry(config, cand, moved, evaluation, forced=forced)
        keep = governance.keep_versions
        published = publish(folder, cand.document, cand.segments, entry=entry, keep=keep)
        if published.changed:
            _journal(config, db_path, cand, published, moved, evaluation, forced=forced)
    return Export(cand, moved, evaluation, published, forced, refused, folder)


def _manifest_entry(
    config: Config, cand: Candidate, moved: Drift, evaluation: Evaluation | None, *, forced: bool
) -> dict[str, Any]:
    return {
        "provenance": {
            "tool_version": store.tool_version(),
            "config_hash": config.fingerprint(),
            "policy_hash": policy_hash(config.governance),
            **cand.inputs.source,
            "window": cand.document["window"],
        },
        "publication": {**moved.summary(), "forced": forced},
        "evaluation": evaluation_document(evaluation) if evaluation else None,
    }


def evaluation_document(evaluation: Evaluation) -> dict[str, Any]:
    """The evaluation as stored in the manifest and printed by `--json`."""
    return {**evaluation.summary(), "estimates": evaluation.to_dicts()}


def _journal(
    config: Config,
    db_path: str,
    cand: Candidate,
    published: Published | None,
    moved: Drift,
    evaluation: Evaluation | None,
    *,
    forced: bool,
) -> None:
    """Register the export as a run, and a published version in `weight_versions`; a
    refused export is a run with status `refused`."""
    from upshot.results import dumps

    classes = cand.weights.classes
    details = {
        "drift": moved.summary(),
        "evaluation": evaluation_document(evaluation) if evaluation else None,
    }
    with store.writing(config, db_path, "weights export") as con, store.transaction(con):
        run = store.start_run(
            con,
            "weights export",
            config,
            inputs_fingerprint=cand.inputs.source.get("inputs_fingerprint"),
            seed=cand.inputs.source.get("seed"),
        )
        if published is not None:
            con.execute(
                query("weights", "insert-weight-version"),
                {
                    "weights_version": published.weights_version,
                    "directory": str(published.path.parent),
                    "run_id": run,
                    "uplift_run_id": cand.inputs.run_id,
                    "sha256": published.sha256,
                    "previous_version": moved.previous_version,
                    "share_moved": moved.share_moved,
                    "breaker_tripped": moved.tripped,
                    "forced": forced,
                    "n_classes": len(classes),
                    "n_positive": sum(c.weight > 0 for c in classes),
                    "details": dumps(details),
                },
            )
        status = "ok" if published is not None else "refused"
        store.finish_run(con, run, status, {"weights_version": cand.version, **details})
