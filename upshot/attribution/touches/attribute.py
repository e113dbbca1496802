"""Touch-based conversion attribution beside causal incrementality.

Journeys come from the warehouse (treated sends are touches, the conversion objective's
events are conversions; `upshot/sql/touches.sql` builds and aggregates them in DuckDB or
on Spark, so only the path table, one row per distinct path, reaches Python) or from a path table in
ChannelAttribution's format. Every method (`rules`, `markov`, `shapley`) credits the same
path table; the causal column puts the uplift estimates next to them as incremental
conversions (uplift × treated sends) with CIs, so the two views can be read side by side.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from upshot.attribution.touches.causal import (
    Causal,
    causal_column,
    check_by,
    missing_row,
)
from upshot.attribution.touches.markov import markov
from upshot.attribution.touches.rules import (
    Credits,
    PathTable,
    align,
    credits_from,
    path_table,
    read_paths,
    rule_credits,
)
from upshot.attribution.touches.shapley import shapley
from upshot.config import parse_window
from upshot.errors import UpshotError, UsageError
from upshot.period import ALL_TIME, Period
from upshot.results import ResultsMixin
from upshot.sql import query

if TYPE_CHECKING:
    from pathlib import Path

    import duckdb

    from upshot.config import Config
    from upshot.engines import Engine

METHODS = ("first_touch", "last_touch", "linear", "time_decay", "markov", "shapley")
# a path table has no touch times, so no time decay
PATH_METHODS = ("first_touch", "last_touch", "linear", "markov", "shapley")
# DuckDB holds one bucket of journeys at a time: a few hundred MB at this size
TOUCHES_PER_BUCKET = 4_000_000
_EMPTY = path_table([], [])
_HASHES = 2**64  # DuckDB's hash() is a UBIGINT
_NAME = "touches journey-aggregates"
_COLUMNS = ("kind", "path", "touch", "conversions", "nulls", "value")


@contextlib.contextmanager
def merge_asof(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Plan ASOF joins as sort-merge joins while the block runs.

    DuckDB turns an ASOF join whose left side it estimates under
    `asof_loop_join_threshold` rows (64) into a nested loop. Its estimate of the
    converters' touches can be three orders too low (52 for 100k at 10M journeys, where
    the nested loop took 431 s and the merge join 17.6 s for identical results), and
    bound parameters no longer prevent it, so the touches queries never leave it to the
    estimate. A DuckDB without the setting never plans the loop.
    """
    import duckdb

    try:
        old = con.execute("SELECT current_setting('asof_loop_join_threshold')").fetchone()
    except duckdb.Error:
        yield
        return
    con.execute("SET asof_loop_join_threshold = 0")
    try:
        yield
    finally:
        con.execute(f"SET asof_loop_join_threshold = {int(old[0]) if old else 64}")


@dataclass(frozen=True, slots=True)
class Journeys:
    """The warehouse's journeys of a period, reduced to what the methods need.

    `paths` is the path table; `time_decay` the SQL-computed time-decay credits;
    `without_touch` and `without_touch_value` count the period's conversions that no
    touch reached within the lookback (no method can credit them).
    """

    paths: PathTable
    time_decay: Credits
    without_touch: float
    without_touch_value: float


def warehouse_journeys(
    con: duckdb.DuckDBPyConnection | Engine,
    events: Sequence[str],
    *,
    by: str = "channel",
    span: Period = ALL_TIME,
    lookback_days: float = 7.0,
    half_life_days: float = 7.0,
    touches_per_bucket: int = TOUCHES_PER_BUCKET,
) -> Journeys:
    """Build journeys in DuckDB, or on another engine (`upshot.engines`), and aggregate them
    to a path table (see `touches.sql`).

    On DuckDB users are processed in hash buckets of about `touches_per_bucket` touches, so
    memory stays bounded however many journeys there are; the buckets' sums are added
    here. Another engine spreads the journeys over its workers itself: one pass over every
    hash (Spark's `hash()` is a 32-bit INT). Either way only the aggregates come back.
    """
    check_by(by)
    lookback = timedelta(days=lookback_days)
    params: dict[str, Any] = {
        "events": list(events),
        "by": by,
        "start": span.start,
        "end": span.end,
        "lookback_seconds": lookback.total_seconds(),
        "touch_from": span.start - lookback if span.start else None,
        "convert_until": span.end + lookback if span.end else None,
        "half_life_days": half_life_days,
    }
    statement = query("touches", "journey-aggregates")
    found_rows: list[tuple[Any, ...]] = []
    if getattr(con, "kind", "duckdb") != "duckdb":
        engine = cast("Engine", con)
        hashes = {"hash_from": -(2**31), "hash_to": 2**31 - 1}
        got = engine.fetch(statement, params | hashes, "outcomes, sends", name=_NAME)
        found_rows = [tuple(row[n] for n in _COLUMNS) for row in got]
    else:
        duck = cast("duckdb.DuckDBPyConnection", con)
        bounds = {k: params[k] for k in ("touch_from", "end")}
        found = duck.execute(query("touches", "treated-touches"), bounds).fetchone()
        buckets = max(1, math.ceil((found[0] if found else 0) / touches_per_bucket))
        for bucket in range(buckets):
            hashes = {"hash_from": _HASHES * bucket // buckets}
            hashes["hash_to"] = _HASHES * (bucket + 1) // buckets - 1
            with merge_asof(duck):
                found_rows += duck.execute(statement, params | hashes).fetchall()
    rows: list[tuple[Any, ...]] = []
    decay: dict[str, np.ndarray] = {}
    missing = np.zeros(2)
    for kind, path, touch, conversions, nulls, value in found_rows:
        if kind == "path":
            rows.append((path, conversions, nulls, value))
        elif kind == "time_decay":
            decay[touch] = decay.get(touch, np.zeros(2)) + np.asarray([conversions, value])
        else:
            missing += np.asarray([conversions, value])
    rows.sort(key=lambda row: tuple(row[0]))  # one order, however many buckets
    table = path_table(*(list(column) for column in zip(*rows, strict=True))) if rows else _EMPTY
    names = sorted(decay)
    time_decay = credits_from(
        "time_decay",
        names,
        np.array([decay[n][0] for n in names]),
        np.array([decay[n][1] for n in names]),
        details={"half_life_days": half_life_days},
    )
    return Journeys(table, time_decay, float(missing[0]), float(missing[1]))


def attribute(
    table: PathTable,
    methods: Sequence[str] = METHODS,
    *,
    markov_order: int = 1,
    time_decay: Credits | None = None,
) -> tuple[Credits, ...]:
    """Credits of each method asked, aligned on the table's channels, in `METHODS` order.

    `time_decay` needs touch times, so it is credited only when given (the warehouse
    path computes it in SQL); asking for it without them is a usage error.
    """
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise UsageError(f"method == {unknown[0]!r}, must be one of {', '.join(METHODS)}")
    if "time_decay" in methods and time_decay is None:
        raise UsageError("method time_decay needs touch times: use the warehouse, not --paths")
    found: dict[str, Credits] = {c.method: c for c in rule_credits(table)}
    if "time_decay" in methods and time_decay is not None:
        found["time_decay"] = time_decay
    if "markov" in methods:
        found["markov"] = markov(table, markov_order)
    if "shapley" in methods:
        found["shapley"] = shapley(table)
    channels = table.channels
    return tuple(align(found[m], channels) for m in METHODS if m in methods)


def from_warehouse(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    *,
    by: str = "channel",
    span: Period = ALL_TIME,
    lookback: str | None = None,
    half_life: str = "7d",
    markov_order: int = 1,
    methods: Sequence[str] = METHODS,
    engine: Engine | None = None,
) -> TouchAttribution:
    """Every method's credits for the period's journeys, with the causal column.

    `lookback` defaults to the conversion objective's window; `half_life` is time decay's.
    `engine` (default: `con`) builds the journeys and counts the treated sends; the
    uplift estimates of the causal column are read from `con`.
    """
    objective = config.objectives.get("conversion")
    if objective is None:
        raise UsageError("upshot.toml defines no 'conversion' objective to attribute")
    lookback = lookback or objective.window
    days = parse_window(lookback, "--lookback")
    if days <= 0:
        raise UsageError(f"--lookback == {lookback!r}, must be longer than 0")
    half_life_days = parse_window(half_life, "--half-life")
    if half_life_days <= 0:
        raise UsageError(f"--half-life == {half_life!r}, must be longer than 0")
    journeys = warehouse_journeys(
        con if engine is None else engine,
        objective.events,
        by=by,
        span=span,
        lookback_days=days,
        half_life_days=half_life_days,
    )
    table = journeys.paths
    credits = attribute(table, methods, markov_order=markov_order, time_decay=journeys.time_decay)
    observed = touched_conversions(table)
    causal = causal_column(
        con,
        by=by,
        span=span,
        items=table.channels,
        observed=observed,
        alpha=config.uplift.alpha,
        engine=engine,
    )
    return TouchAttribution(
        by,
        "warehouse",
        table,
        credits,
        causal,
        span,
        lookback,
        journeys.without_touch,
        journeys.without_touch_value,
    )


def touched_conversions(table: PathTable) -> dict[str, float]:
    """Per item, the conversions of the journeys it touched (each journey once)."""
    out: dict[str, float] = {}
    for path, conversions in zip(table.paths, table.conversions, strict=True):
        for item in set(path):
            out[item] = out.get(item, 0.0) + float(conversions)
    return out


def from_paths(
    file: str | Path,
    *,
    by: str = "channel",
    markov_order: int = 1,
    methods: Sequence[str] = PATH_METHODS,
) -> TouchAttribution:
    """Credits for a ChannelAttribution path table; no warehouse, so no causal column."""
    check_by(by)
    table = read_paths(file)
    credits = attribute(table, methods, markov_order=markov_order)
    rows = tuple(
        missing_row(c, 0, "no_warehouse", "a path table has no sends") for c in table.channels
    )
    return TouchAttribution(by, "paths", table, credits, Causal(rows, None, None, "no_warehouse"))


@dataclass(frozen=True)
class TouchAttribution(ResultsMixin):
    """Credits of every method for one path table, the causal column, and provenance.

    `to_dicts()` gives one row per channel (or class) and method; `document()` the
    `--json` shape; `rows()` the stored shape that `chart_data` reads.
    """

    by: str
    source: str  # warehouse | paths
    table: PathTable
    credits: tuple[Credits, ...]
    causal: Causal
    span: Period = ALL_TIME
    lookback: str | None = None
    without_touch: float = math.nan
    without_touch_value: float = math.nan
    run_id: str | None = None

    def __post_init__(self) -> None:
        total = self.table.total_conversions
        for credit in self.credits:
            added = float(np.sum(credit.conversions))
            if credit.status == "ok" and not math.isclose(added, total, rel_tol=1e-9, abs_tol=1e-6):
                raise UpshotError(
                    f"{credit.method} credits add to {added}, not {total} conversions"
                )

    def rows(self) -> list[dict[str, Any]]:
        """One row per item and method, plus `causal` rows: the shape `touch_credits`
        stores and `chart_data` reads (`ci_*` are NaN for touch methods)."""
        nan, rows = math.nan, []
        for c in self.credits:
            numbers = zip(c.channels, c.conversions, c.value, c.share(), c.se, strict=True)
            for item, conversions, value, share, se in numbers:
                rows.append(
                    row_dict(item, c.method, conversions, value, share, se, nan, nan, c.status)
                )
        total = sum(r.effect for r in self.causal.rows if r.status == "ok")
        for r in self.causal.rows:
            share = r.effect / total if r.status == "ok" and total > 0 else nan
            lower, upper = r.effect_ci_lower, r.effect_ci_upper
            rows.append(
                row_dict(r.item, "causal", r.effect, nan, share, nan, lower, upper, r.status)
            )
        return rows

    def to_dicts(self) -> list[dict[str, Any]]:
        """The `credits` of the `--json` document: one per channel (or class) and method."""
        names = ("method", "conversions", "value", "share", "se", "status")
        return [
            {self.by: r["item"]} | {k: r[k] for k in names}
            for r in self.rows()
            if r["method"] != "causal"
        ]

    def causal_dicts(self) -> list[dict[str, Any]]:
        names = (
            "effect",
            "effect_ci_lower",
            "effect_ci_upper",
            "uplift",
            "n_treatment",
            "estimand",
            "observed",
            "rel_effect",
            "rel_effect_ci_lower",
            "rel_effect_ci_upper",
            "status",
            "note",
            "warning",
        )
        return [{self.by: r.item} | {k: getattr(r, k) for k in names} for r in self.causal.rows]

    def document(self) -> dict[str, Any]:
        """The `--json` document."""
        table, causal = self.table, self.causal
        doc: dict[str, Any] = {
            "by": self.by,
            "source": self.source,
            "run_id": self.run_id,
            "period": {"week": self.span.week, "start": self.span.start, "end": self.span.end},
            "lookback": self.lookback,
            "total_conversions": table.total_conversions,
            "total_value": table.total_value,
            "total_null": table.total_nulls,
            "conversions_without_touch": self.without_touch,
            "value_without_touch": self.without_touch_value,
            "paths": len(table.paths),
            "methods": [c.method for c in self.credits],
            "credits": self.to_dicts(),
            "causal": self.causal_dicts(),
            "causal_source": {
                "status": causal.status,
                "uplift_run_id": causal.uplift_run_id,
                "uplift_week": causal.uplift_week,
            },
        }
        for credit in self.credits:
            if credit.details:
                doc[credit.method] = {"status": credit.status, **credit.details}
        return doc

    def chart_data(self) -> list[dict[str, Any]]:
        return chart_data(self.rows())


_ROW = ("item", "method", "conversions", "value", "share", "se", "ci_lower", "ci_upper", "status")


def row_dict(*values: Any) -> dict[str, Any]:
    return {
        k: (float(v) if k not in ("item", "method", "status") else v)
        for k, v in zip(_ROW, values, strict=True)
    }


def chart_data(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pre-aggregated rows for a grouped bar chart of credit by method, causal beside.

    Input: `TouchAttribution.rows()` or `stored_rows()`. Output, sorted by item and
    method: dicts with `item`, `method`, `kind` (`touch` or `causal`), `conversions`,
    `share`, `ci_lower`/`ci_upper` (causal only) and `status`; a number that was not
    estimated is None, so the chart can say so rather than draw a zero.
    """
    order = {m: i for i, m in enumerate((*METHODS, "causal"))}

    def clean(value: Any) -> float | None:
        return float(value) if value is not None and math.isfinite(value) else None

    return [
        {
            "item": r["item"],
            "method": r["method"],
            "kind": "causal" if r["method"] == "causal" else "touch",
            "conversions": clean(r["conversions"]),
            "share": clean(r["share"]),
            "ci_lower": clean(r["ci_lower"]),
            "ci_upper": clean(r["ci_upper"]),
            "status": r["status"],
        }
        for r in sorted(rows, key=lambda r: (str(r["item"]), order.get(r["method"], 99)))
    ]
