"""The shortcut pass over a Parquet file whose footers show no NULL in any variable.

A file's metrics are aggregated per complete case (`query.Case`): each metric over the
users whose value is known, a missing covariate imputed beside its missing indicator.
When the Parquet footers count no NULL in any variable used, the only way a value can
be missing is NaN, and a NaN makes every sum it enters NaN. So this pass aggregates the
plain columns once (no NaN test, no per-case masking, no indicators), and if every
aggregate is finite no value was missing: every complete case is every user, every
indicator is 0, and the per-case aggregates are the plain ones under the case's names
(`expand`). Any non-finite aggregate sends the caller back to the full pass, which then
sees exactly what it always saw.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from upshot.experiments.query import Aggregates, Case
from upshot.experiments.stats import missing_name, product_name, squares_name, sum_name
from upshot.sql import query

if TYPE_CHECKING:
    import duckdb


def no_null_columns(con: duckdb.DuckDBPyConnection, path: str) -> set[str]:
    """The columns (lower case) of a Parquet file whose every row group's footer counts
    0 NULLs; empty when the footers cannot be read or lack null counts."""
    import duckdb

    try:
        rows = con.execute(query("experiments", "parquet-no-nulls"), {"path": path}).fetchall()
    except duckdb.Error:
        return set()
    return {str(col) for col, none in rows if none}


def plain(agg: Aggregates) -> Aggregates:
    """The all-users aggregates that `expand` turns into `agg`'s complete-case ones: each
    variable's sum and square, and every pair some case multiplies."""
    wanted: set[frozenset[str]] = set()
    for case in agg.cases:
        real = [v for v in case.variables if v in agg.variables]
        wanted |= {frozenset((a, b)) for i, a in enumerate(real) for b in real[i + 1 :]}
    order = agg.variables
    pairs = tuple(
        (a, b) for i, a in enumerate(order) for b in order[i + 1 :] if frozenset((a, b)) in wanted
    )
    return Aggregates(order, pairs, dict(agg.winsorize), agg.binary, (), agg.ones)


def finite(rows: Sequence[Mapping[str, Any]], agg: Aggregates) -> bool:
    """Whether every sum and product is a finite number (no NaN or infinity was summed).
    A NULL sum is an arm with no users, where nothing was summed."""
    names = [sum_name(v) for v in agg.variables]
    names += [squares_name(v) for v in agg.variables]
    names += [product_name(a, b) for a, b in agg.pairs]
    for row in rows:
        for name in names:
            value = row.get(name)
            if value is not None and not math.isfinite(float(value)):
                return False
    return True


def expand(rows: Sequence[Mapping[str, Any]], agg: Aggregates) -> list[dict[str, Any]]:
    """The plain aggregates `rows` (of `plain(agg)`, all finite) under each case's names
    as the full pass would return them: no value is missing, so each case's count is
    `n`, an indicator is 0 and so is every sum it enters."""
    names = {sum_name(v) for v in agg.variables} | {squares_name(v) for v in agg.variables}
    names |= {product_name(a, b) for i, a in enumerate(agg.variables) for b in agg.variables[i:]}
    out = []
    for row in rows:
        new = {k: v for k, v in row.items() if k not in names}
        for case in agg.cases:
            new |= _case(row, case, agg.variables)
        out.append(new)
    return out


def _case(row: Mapping[str, Any], case: Case, variables: Sequence[str]) -> dict[str, Any]:
    p = case.prefix
    # the indicators are the case's names that are no column of the file
    indicators = {missing_name(c) for c in case.variables} - set(variables)
    zero = None if not row.get("n") else 0.0  # an indicator's sums: 0 over no missing value

    def product(a: str, b: str) -> Any:
        if a in indicators or b in indicators:
            return zero
        return row[product_name(a, b)] if product_name(a, b) in row else row[product_name(b, a)]

    out: dict[str, Any] = {p + "n": row["n"]}
    for i, a in enumerate(case.variables):
        real = a not in indicators
        out[p + sum_name(a)] = row[sum_name(a)] if real else zero
        out[p + squares_name(a)] = row[squares_name(a)] if real else zero
        for b in case.variables[i + 1 :]:
            out[p + product_name(a, b)] = product(a, b)
    return out
