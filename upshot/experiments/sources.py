"""Running the sufficient-statistics query on a source: a user-level file or the warehouse.

Both return the same rows (group keys, `n`, the naming-rule aggregates), so everything
downstream is one engine whatever the data came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from upshot.errors import UsageError
from upshot.experiments import complete, query
from upshot.experiments.spec import EventVariable, MetricSpec

if TYPE_CHECKING:
    import duckdb

    from upshot.engines import Engine

    Con = duckdb.DuckDBPyConnection | Engine

    from upshot.experiments.cuped import LinArm
    from upshot.experiments.estimates import Target

KEYS = ("variant", "exclusion")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A pass over one source's users: the per-user `source` SQL and how to aggregate it.

    `rows` runs the sufficient-statistics query; `hc2` the second pass of Lin's HC2
    variance for one metric (`hc2.hc2_sql`). `cased`: the aggregates are per metric over
    its complete case; `ranges` fills 0/1 detection columns known from Parquet footers;
    `shortcut` (source, aggregates) is the pass of `complete`, tried first when the
    footers show no NULL in any variable.
    """

    source: str
    params: dict[str, Any]
    keys: tuple[str, ...]
    agg: query.Aggregates
    where: str
    cased: bool = False
    ranges: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    shortcut: tuple[str, query.Aggregates] | None = None

    def rows(self, con: Con) -> list[dict[str, Any]]:
        rows = self._shortcut_rows(con) if self.shortcut else None
        if rows is None:
            sql, qparams = query.suffstats_sql(self.source, self.keys, self.agg)
            rows = _fetch(con, sql, {**self.params, **qparams}, self.where, "suffstats")
            query.fill_squares(rows, self.agg)
        for v, (lo, hi) in self.ranges.items():
            for row in rows:
                row[f"{v}_min"], row[f"{v}_max"] = lo, hi
        return rows

    def _shortcut_rows(self, con: Con) -> list[dict[str, Any]] | None:
        """The complete-case rows from the plain pass, or None if a NaN or an infinity
        was summed (then only the full pass knows the complete cases)."""
        assert self.shortcut is not None
        source, agg = self.shortcut
        sql, qparams = query.suffstats_sql(source, self.keys, agg)
        rows = _fetch(con, sql, {**self.params, **qparams}, self.where, "suffstats")
        rows = query.fill_squares(rows, agg)
        return complete.expand(rows, self.agg) if complete.finite(rows, agg) else None

    def hc2(self, con: Con, target: Target, arms: Mapping[str, LinArm]) -> dict[str, float]:
        """Each arm's HC2 sum of `target` under Lin's adjustment (NaN: not computable)."""
        from upshot.experiments.hc2 import hc2_sql

        sql, qparams = hc2_sql(self.source, self.keys, self.agg, target, arms, cased=self.cased)
        rows = _fetch(con, sql, {**self.params, **qparams}, self.where, "hc2")
        return {str(r["variant"]): _float(r["hc2"]) for r in rows}


def on_engine(con: Any) -> bool:
    """Whether `con` is another engine (`upshot.engines`) rather than a DuckDB connection."""
    return getattr(con, "kind", "duckdb") != "duckdb"


def _fetch(
    con: Con, sql: str, params: dict[str, Any], where: str, name: str
) -> list[dict[str, Any]]:
    """The rows of a pass on a DuckDB connection, or on another engine."""
    if on_engine(con):
        return cast("Engine", con).fetch(sql, params, where, name=f"experiments {name}")
    return query.fetch(cast("duckdb.DuckDBPyConnection", con), sql, params, where)


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def table_rows(
    con: Con,
    path: str | Path,
    specs: Sequence[MetricSpec],
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Per-group sufficient statistics of a Parquet/CSV file with one row per user (see
    `prepare_table` for the arguments)."""
    return prepare_table(con, path, specs, **kwargs).rows(con)


def prepare_table(
    con: Con,
    path: str | Path,
    specs: Sequence[MetricSpec],
    *,
    variant_col: str | None,
    user_col: str | None = None,
    winsorize: Mapping[str, float] | None = None,
    second_key: str | None = None,
    nulls: str = "missing",
    joint: bool = False,
) -> Prepared:
    """The pass over a Parquet/CSV file with one row per user.

    Groups are (variant, exclusion), plus `variant_b` holding `second_key`'s value when
    given (a second experiment's arm, or a segment). A NULL or NaN value is missing: each
    metric's aggregates are over its complete case (`query.Case`, read with the prefix
    `Target.case`); with `joint`, one complete case requires every variable of `specs`
    (a decomposition's steps or parts add up over the same users), read with the prefix
    `query.JOINT`. `nulls="zero"` reads a missing value as 0 instead.
    """
    if nulls not in ("missing", "zero"):
        raise UsageError(f"nulls == {nulls!r}, must be missing or zero")
    if not specs:
        raise UsageError("no metrics: give at least one --metric or --ratio")
    engine = on_engine(con)
    if engine:
        columns = cast("Engine", con).columns(str(path))
    else:
        columns = query.table_columns(cast("duckdb.DuckDBPyConnection", con), path)
    candidates = [s.numerator for s in specs if s.binary is None]
    # 0/1 metrics are told apart by their range: free from Parquet footers, else aggregated
    # (another engine aggregates them: its files may be folders on storage DuckDB cannot see)
    capped_or_remote = winsorize or engine
    ranges = {} if capped_or_remote else query.parquet_ranges(cast(Any, con), path)
    known = {v: r for v, r in ranges.items() if v in map(str.lower, candidates)}
    binary = [v for v in candidates if v.lower() not in known]
    agg = query.plan(
        (s.target() for s in specs),
        winsorize=winsorize,
        binary=binary,
        missing=nulls == "missing",
        joint=joint,
        ones=_ones(columns, ranges, (v for s in specs for v in s.variables)),
    )
    for v in agg.winsorize:
        if v not in agg.variables:
            raise UsageError(f"--winsorize {v}: not a variable of any metric")
    source, params = query.table_source(
        path, columns, variant_col, agg.variables, user_col=user_col, second_key=second_key,
        nulls=nulls,
    )  # fmt: skip
    # without a user column nothing is excluded by rule, and grouping by a constant key
    # costs a fifth of the pass: the engine reads a missing `exclusion` as none
    keys: tuple[str, ...] = ("variant", "variant_b") if second_key else ("variant",)
    if user_col:
        keys += ("exclusion",)
    fill = {v: known[v.lower()] for v in candidates if v.lower() in known}
    shortcut = None
    if agg.cases and ranges:  # Parquet footers were read
        no_nulls = complete.no_null_columns(cast(Any, con), str(path))
        if all(v.lower() in no_nulls for v in agg.variables):
            plain_source, _ = query.table_source(
                path, columns, variant_col, agg.variables, user_col=user_col,
                second_key=second_key, nulls=nulls, nan_test=False,
            )  # fmt: skip
            shortcut = (plain_source, complete.plain(agg))
    return Prepared(source, params, keys, agg, str(path), bool(agg.cases), fill, shortcut)


_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
             "UINTEGER", "UBIGINT", "UHUGEINT")  # fmt: skip


def _ones(
    columns: Mapping[str, str], ranges: Mapping[str, tuple[Any, Any]], variables: Any
) -> list[str]:
    """The variables whose values can only be 0 or 1 (or NULL): booleans, and integer
    columns whose footers bound them to [0, 1]. A DOUBLE in [0, 1] may hold 0.5."""
    out = []
    for v in dict.fromkeys(variables):
        kind = columns.get(v.lower(), "").upper()
        lo, hi = ranges.get(v.lower(), (None, None))
        if kind == "BOOLEAN" or (
            kind in _INTEGERS and lo is not None and hi is not None and lo >= 0 and hi <= 1
        ):
            out.append(v)
    return out


def warehouse_rows(
    con: Con,
    experiment: str,
    specs: Sequence[MetricSpec],
    variables: Sequence[EventVariable],
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Per-group sufficient statistics of one experiment from assignments x outcomes."""
    return prepare_warehouse(experiment, specs, variables, **kwargs).rows(con)


def prepare_warehouse(
    experiment: str,
    specs: Sequence[MetricSpec],
    variables: Sequence[EventVariable],
    *,
    other: str | None = None,
    segment: str | None = None,
) -> Prepared:
    """The pass over one experiment's users, from assignments x outcomes."""
    if not specs:
        raise UsageError("no metrics to analyse")
    needed = {v for s in specs for v in s.variables}
    used = [v for v in variables if v.name in needed]
    winsorize = {v.name: v.winsorize for v in used if v.winsorize is not None}
    # an `any` metric is 0/1 by construction
    ones = [v.name for v in used if v.aggregation == "any"]
    agg = query.plan((s.target() for s in specs), winsorize=winsorize, ones=ones)
    source, params = query.warehouse_source(used, experiment, other=other, segment=segment)
    if other is not None:
        keys: tuple[str, ...] = ("variant", "variant_b", "exclusion")
    elif segment is not None:
        keys = ("variant", "segment", "exclusion")
    else:
        keys = KEYS
    return Prepared(source, params, keys, agg, f"experiment {experiment}")


def named_rows(con: Con, name: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows of the named statement `experiments <name>` on a DuckDB connection or on
    another engine, as tuples."""
    from upshot.sql import query as named

    sql = named("experiments", name)
    if on_engine(con):
        found = cast("Engine", con).fetch(sql, params, "lake", name=f"experiments {name}")
        return [tuple(r.values()) for r in found]
    return cast("duckdb.DuckDBPyConnection", con).execute(sql, params or None).fetchall()


def require_experiment(con: Con, experiment: str, label: str) -> None:
    """A UsageError naming the experiments the warehouse knows when `experiment` is not one;
    `label` says where the name came from (`experiment`, `--interaction`)."""
    if experiment_exists(con, experiment):
        return
    known = [r[0] for r in named_rows(con, "experiment-ids", {})]
    listed = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "") if known else "none"
    raise UsageError(
        f"{label} {experiment!r} has no assignments in the warehouse (known: {listed})"
    )


def experiment_exists(con: Con, experiment: str) -> bool:
    rows = named_rows(con, "experiment-exists", {"experiment": experiment})
    return bool(rows and rows[0][0])
