"""Running the sufficient-statistics query on a source: a user-level file or the warehouse.

Both return the same rows (group keys, `n`, the naming-rule aggregates), so everything
downstream is one engine whatever the data came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from upshot.errors import UsageError
from upshot.experiments import query
from upshot.experiments.spec import EventVariable, MetricSpec

if TYPE_CHECKING:
    import duckdb

KEYS = ("variant", "exclusion")


def table_rows(
    con: duckdb.DuckDBPyConnection,
    path: str | Path,
    specs: Sequence[MetricSpec],
    *,
    variant_col: str | None,
    user_col: str | None = None,
    winsorize: Mapping[str, float] | None = None,
    second_key: str | None = None,
) -> list[dict[str, Any]]:
    """Per-group sufficient statistics of a Parquet/CSV file with one row per user.

    Groups are (variant, exclusion), plus `variant_b` holding `second_key`'s value when
    given (a second experiment's arm, or a segment).
    """
    if not specs:
        raise UsageError("no metrics: give at least one --metric or --ratio")
    columns = query.table_columns(con, path)
    candidates = [s.numerator for s in specs if s.binary is None]
    # 0/1 metrics are told apart by their range: free from Parquet footers, else aggregated
    ranges = {} if winsorize else query.parquet_ranges(con, path)  # capping changes ranges
    known = {v: r for v, r in ranges.items() if v in map(str.lower, candidates)}
    binary = [v for v in candidates if v.lower() not in known]
    agg = query.plan((s.target() for s in specs), winsorize=winsorize, binary=binary)
    for v in agg.winsorize:
        if v not in agg.variables:
            raise UsageError(f"--winsorize {v}: not a variable of any metric")
    source, params = query.table_source(
        path, columns, variant_col, agg.variables, user_col=user_col, second_key=second_key
    )
    # without a user column nothing is excluded by rule, and grouping by a constant key
    # costs a fifth of the pass: the engine reads a missing `exclusion` as none
    keys: tuple[str, ...] = ("variant", "variant_b") if second_key else ("variant",)
    if user_col:
        keys += ("exclusion",)
    sql, qparams = query.suffstats_sql(source, keys, agg)
    rows = query.fetch(con, sql, {**params, **qparams}, str(path))
    for v in candidates:
        if v.lower() in known:
            lo, hi = known[v.lower()]
            for row in rows:
                row[f"{v}_min"], row[f"{v}_max"] = lo, hi
    return rows


def warehouse_rows(
    con: duckdb.DuckDBPyConnection,
    experiment: str,
    specs: Sequence[MetricSpec],
    variables: Sequence[EventVariable],
    *,
    other: str | None = None,
    segment: str | None = None,
) -> list[dict[str, Any]]:
    """Per-group sufficient statistics of one experiment from assignments x outcomes."""
    if not specs:
        raise UsageError("no metrics to analyse")
    needed = {v for s in specs for v in s.variables}
    used = [v for v in variables if v.name in needed]
    winsorize = {v.name: v.winsorize for v in used if v.winsorize is not None}
    agg = query.plan((s.target() for s in specs), winsorize=winsorize)
    source, params = query.warehouse_source(used, experiment, other=other, segment=segment)
    if other is not None:
        keys: tuple[str, ...] = ("variant", "variant_b", "exclusion")
    elif segment is not None:
        keys = ("variant", "segment", "exclusion")
    else:
        keys = KEYS
    sql, qparams = query.suffstats_sql(source, keys, agg)
    return query.fetch(con, sql, {**params, **qparams}, f"experiment {experiment}")


def require_experiment(con: duckdb.DuckDBPyConnection, experiment: str, label: str) -> None:
    """A UsageError naming the experiments the warehouse knows when `experiment` is not one;
    `label` says where the name came from (`experiment`, `--interaction`)."""
    from upshot.errors import UsageError
    from upshot.sql import query as named

    if experiment_exists(con, experiment):
        return
    known = [r[0] for r in con.execute(named("experiments", "experiment-ids")).fetchall()]
    listed = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "") if known else "none"
    raise UsageError(
        f"{label} {experiment!r} has no assignments in the warehouse (known: {listed})"
    )


def experiment_exists(con: duckdb.DuckDBPyConnection, experiment: str) -> bool:
    from upshot.sql import query as named

    row = con.execute(
        named("experiments", "experiment-exists"), {"experiment": experiment}
    ).fetchone()
    return bool(row and row[0])
