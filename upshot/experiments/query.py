"""The one-pass sufficient-statistics query, generated from the metric definitions.

`suffstats_sql` wraps a source (one row per user: group keys and variable columns) in a
single GROUP BY that returns, per group, `n` and the aggregates of the naming rule in
`upshot.experiments.stats` for every variable and every pair the metrics need. The
source is a user-level file (`table_source`) or the warehouse's assignments joined to
outcomes (`warehouse_source`); both feed the same aggregate query. Winsorized variables
are capped at their quantile over all users (one extra scan for the quantiles).
Identifiers are quoted with `upshot.sql.ident`; windows, events and quantiles are bound.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from upshot.errors import InputError, UsageError
from upshot.experiments.stats import (
    column_names,
    missing_name,
    product_name,
    squares_name,
    sum_name,
)
from upshot.sql import ident, query

if TYPE_CHECKING:
    import duckdb

    from upshot.experiments.estimates import Target
    from upshot.experiments.spec import EventVariable

_US_PER_DAY = 86_400_000_000


@dataclass(frozen=True, slots=True)
class Case:
    """The complete-case aggregates of the metrics whose `required` variables (numerator,
    denominator) are all non-NULL: columns `{prefix}n` and `{prefix}` + the naming rule
    for `variables`. A covariate enters as coalesce(c, 0) beside its missing indicator
    (`missing_name(c)`), which together equal mean imputation plus an indicator."""

    prefix: str
    required: tuple[str, ...]
    variables: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Aggregates:
    """Which aggregates one query computes. `variables` in query order; `pairs` (a, b)
    with a before b; `binary` variables get their range `{v}_min`, `{v}_max` (which tells
    0/1 metrics apart). With `cases` (NULL is missing), the per-metric complete-case
    aggregates replace the all-rows sums and products (`n` counts every user). `ones`
    are variables known to hold only 0, 1 or NULL (booleans, 0/1 integers, `any` event
    metrics): their sum of squares is their sum, so it is not aggregated but copied
    (`fill_squares`), as it is for missing indicators."""

    variables: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]
    winsorize: dict[str, float] = field(default_factory=dict)
    binary: tuple[str, ...] = ()
    cases: tuple[Case, ...] = ()
    ones: tuple[str, ...] = ()


# the prefix of the one complete case that requires every variable (`plan(joint=True)`)
JOINT = "cc(*)::"


def plan(
    targets: Iterable[Target],
    *,
    winsorize: Mapping[str, float] | None = None,
    binary: Iterable[str] = (),
    missing: bool = False,
    joint: bool = False,
    ones: Iterable[str] = (),
) -> Aggregates:
    """The aggregates for `targets`: each target's variables and their pairwise products;
    with `missing`, per metric over its complete case instead (see `Case`), or with
    `joint` too over the one complete case of the users whose every variable is known
    (prefix `JOINT`: a decomposition's parts must add up over the same users). `ones`: the
    variables known to be 0/1 (a capped one is not: its cap may lie between)."""
    targets = list(targets)
    order: list[str] = []
    wanted: set[frozenset[str]] = set()
    by_case: dict[str, tuple[tuple[str, ...], list[str]]] = {}
    for t in targets:
        prefix, required = t.case
        _, case_vars = by_case.setdefault(prefix, (required, list(required)))
        for c in t.covariates:
            case_vars += [v for v in (c, missing_name(c)) if v not in case_vars]
        vs = t.variables
        order += [v for v in vs if v not in order]
        wanted |= {frozenset((a, b)) for i, a in enumerate(vs) for b in vs[i + 1 :]}
    pairs = tuple(
        (a, b) for i, a in enumerate(order) for b in order[i + 1 :] if frozenset((a, b)) in wanted
    )
    bins = tuple(v for v in dict.fromkeys(binary) if v in order)
    cases = tuple(Case(p, req, tuple(vs)) for p, (req, vs) in by_case.items()) if missing else ()
    if missing and joint:
        cases = (Case(JOINT, tuple(order), tuple(order)),)
    capped = dict(winsorize or {})
    known = tuple(v for v in dict.fromkeys(ones) if v in order and v not in capped)
    agg = Aggregates(tuple(order), pairs, capped, bins, cases, known)
    column_names(agg.variables)  # refuses variable names whose aggregate names clash
    for case in cases:
        column_names(case.variables)
    return agg


def case_expressions(
    required: Sequence[str], variables: Sequence[str], table: str = ""
) -> dict[str, str]:
    """The SQL of each variable of a complete case: a required one as is, a covariate with
    NULL as 0 (coalesce), its missing indicator (`missing_name`) as 0/1; columns of
    `table` ("b." qualifies them) when given."""
    names = set(variables)
    indicators = {missing_name(c): c for c in variables if missing_name(c) in names}
    out = {}
    for v in variables:
        if v in required:
            out[v] = table + ident(v)
        elif v in indicators:
            out[v] = f"CASE WHEN {table}{ident(indicators[v])} IS NULL THEN 1.0 ELSE 0.0 END"
        else:
            # a covariate: NULL imputed, see its indicator
            out[v] = f"coalesce({table}{ident(v)}, 0.0)"
    return out


def case_filter(required: Sequence[str], table: str = "") -> str:
    return " AND ".join(f"{table}{ident(v)} IS NOT NULL" for v in required) or "true"


def _case_projection(case: Case) -> list[str]:
    """Each variable of a complete case as a column `{prefix}{v}`, NULL outside the case:
    plain sums over them are the case's aggregates (faster than FILTER clauses)."""
    expr = case_expressions(case.required, case.variables)
    cond = case_filter(case.required)
    cols = []
    for v in case.variables:
        masked = expr[v] if case.required == (v,) else f"CASE WHEN {cond} THEN {expr[v]} END"
        cols.append(f"{masked} AS {ident(case.prefix + v)}")
    return cols


def _case_ones(case: Case, ones: Sequence[str]) -> list[str]:
    """The case's variables that hold only 0, 1 or NULL: the known 0/1 ones (a covariate's
    NULL becomes 0) and the missing indicators."""
    names = set(case.variables)
    indicators = {missing_name(c) for c in case.variables} & names
    return [v for v in case.variables if v in ones or v in indicators]


def _case_columns(case: Case, ones: Sequence[str] = ()) -> list[str]:
    """count, sums and products over the users whose required variables are all known."""
    p = case.prefix
    col = {v: ident(p + v) for v in case.variables}
    cols = [f"count({col[case.required[0]]}) AS {ident(p + 'n')}"]
    copied = _case_ones(case, ones)
    for i, a in enumerate(case.variables):
        cols.append(f"sum({col[a]}) AS {ident(p + sum_name(a))}")
        if a not in copied:
            cols.append(f"sum({col[a]} * {col[a]}) AS {ident(p + squares_name(a))}")
        cols += [
            f"sum({col[a]} * {col[b]}) AS {ident(p + product_name(a, b))}"
            for b in case.variables[i + 1 :]
        ]
    return cols


def _select_list(agg: Aggregates) -> list[str]:
    cols = ["count(*) AS n"]
    if agg.cases:
        for case in agg.cases:
            cols += _case_columns(case, agg.ones)
    else:
        for v in agg.variables:
            q = ident(v)
            cols.append(f"sum({q}) AS {ident(sum_name(v))}")
            if v not in agg.ones:
                cols.append(f"sum({q} * {q}) AS {ident(squares_name(v))}")
        for a, b in agg.pairs:
            cols.append(f"sum({ident(a)} * {ident(b)}) AS {ident(product_name(a, b))}")
    for v in agg.binary:
        cols += [
            f"min({ident(v)}) AS {ident(v + '_min')}",
            f"max({ident(v)}) AS {ident(v + '_max')}",
        ]
    return cols


def fill_squares(rows: list[dict[str, Any]], agg: Aggregates) -> list[dict[str, Any]]:
    """Copy each sum into the sum of squares the query left out (`Aggregates.ones`): for
    values 0 and 1, x * x == x exactly, so the two sums are the same additions."""
    names = [(sum_name(v), squares_name(v)) for v in agg.ones] if not agg.cases else []
    for case in agg.cases:
        names += [
            (case.prefix + sum_name(v), case.prefix + squares_name(v))
            for v in _case_ones(case, agg.ones)
        ]
    for row in rows:
        for total, squares in names:
            row[squares] = row[total]
    return rows


def with_ctes(
    source: str, keys: Sequence[str], agg: Aggregates
) -> tuple[list[str], str, dict[str, Any]]:
    """The CTEs over `source` (winsorized when asked), the relation to read and its
    quantile parameters: what every pass over the users reads."""
    params: dict[str, Any] = {}
    body = "src"
    ctes = [f"src AS ({source})"]
    if agg.winsorize:
        caps = []
        for i, (v, q) in enumerate(agg.winsorize.items()):
            params[f"q{i}"] = q
            caps.append(f"quantile_cont({ident(v)}, $q{i}) AS {ident(v)}")
        # the quantile is over the users analysed: excluded ones (several arms, no arm) are out
        where = "WHERE variant IS NOT NULL" + (" AND exclusion = ''" if "exclusion" in keys else "")
        ctes.append(f"caps AS (SELECT {', '.join(caps)} FROM src {where})")
        # not least(): it would turn a NULL into the cap
        capped = [
            f"CASE WHEN src.{ident(v)} > caps.{ident(v)} THEN caps.{ident(v)} "
            f"ELSE src.{ident(v)} END AS {ident(v)}"
            if v in agg.winsorize
            else f"src.{ident(v)}"
            for v in agg.variables
        ]
        keys_src = ", ".join(f"src.{ident(k)}" for k in keys)
        ctes.append(f"w AS (SELECT {keys_src}, {', '.join(capped)} FROM src CROSS JOIN caps)")
        body = "w"
    return ctes, body, params


def suffstats_sql(source: str, keys: Sequence[str], agg: Aggregates) -> tuple[str, dict[str, Any]]:
    """The aggregate query over `source` grouped by `keys`, and its quantile parameters."""
    key_cols = ", ".join(ident(k) for k in keys)
    ctes, body, params = with_ctes(source, keys, agg)
    if agg.cases:
        projected = [c for case in agg.cases for c in _case_projection(case)]
        binary = [ident(v) for v in agg.binary]
        ctes.append(f"cc AS (SELECT {', '.join([key_cols, *binary, *projected])} FROM {body})")
        body = "cc"
    select = ",\n       ".join(_select_list(agg))
    sql = (
        f"WITH {', '.join(ctes)}\n"
        f"SELECT {key_cols},\n       {select}\nFROM {body}\nGROUP BY {key_cols}"
    )
    return sql, params


def read_relation(path: str | Path) -> tuple[str, dict[str, Any]]:
    """A DuckDB table function reading a user-level Parquet or CSV file, path bound."""
    text = str(path)
    lower = text.lower()
    if lower.endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz", ".txt")):
        return "read_csv($path, auto_detect = true, header = true)", {"path": text}
    if lower.endswith((".parquet", ".pq", ".parq")) or "*" in lower:
        return "read_parquet($path)", {"path": text}
    raise UsageError(f"{text}: expected a .parquet or .csv file")


def table_columns(con: duckdb.DuckDBPyConnection, path: str | Path) -> dict[str, str]:
    """Column name (lower case) -> type of a user-level file; InputError if unreadable."""
    import duckdb

    if "*" not in str(path) and not Path(path).exists():
        raise UsageError(f"{path}: no such file")
    relation, params = read_relation(path)
    try:
        rows = con.execute(
            query("experiments", "table-columns").replace("/*relation*/", relation), params
        ).fetchall()
    except duckdb.Error as exc:
        raise InputError(f"{path}: cannot read it ({str(exc).splitlines()[0]})") from None
    return {str(name).lower(): str(kind) for name, kind in rows}


def table_source(
    path: str | Path,
    columns: Mapping[str, str],
    variant_col: str | None,
    variables: Sequence[str],
    *,
    user_col: str | None = None,
    second_key: str | None = None,
    nulls: str = "missing",
    nan_test: bool = True,
) -> tuple[str, dict[str, Any]]:
    """One row per user of the file: variant, exclusion, variant_b/segment, variables.

    Metric columns become DOUBLE (booleans 0/1), NaN becomes NULL (both are missing), and
    with `nulls="zero"` a missing value becomes 0. Without `nan_test` NaN stays NaN (for
    `complete`, which sees it in the sums). With `user_col`, users that
    appear under more than one variant are excluded (`multi_arm`); rows without a
    variant are excluded (`null_variant`). Without `variant_col` every row is in one
    group named `all` (for baselines).
    """
    needed = [
        *([variant_col] if variant_col else []),
        *variables,
        *([user_col] if user_col else []),
        *([second_key] if second_key else []),
    ]
    for col in needed:
        if col.lower() not in columns:
            raise InputError(f"{path}: no column {col!r} (columns: {', '.join(columns)})")
    relation, params = read_relation(path)
    if not variant_col:
        cols = [_as_double(c, columns, nulls, nan_test) for c in variables]
        sql = (
            "SELECT 'all' AS variant, NULL::VARCHAR AS variant_b, '' AS exclusion, "
            f"{', '.join(cols)} FROM {relation} t"
        )
        return sql, params
    v = ident(variant_col)
    second = f"CAST(t.{ident(second_key)} AS VARCHAR)" if second_key else "NULL::VARCHAR"
    cols = [_as_double(c, columns, nulls, nan_test) for c in variables]
    if user_col:
        u = ident(user_col)
        multi = (
            f"LEFT JOIN (SELECT {u} AS uid FROM {relation} GROUP BY {u} "
            f"HAVING count(DISTINCT {v}) > 1) m ON m.uid = t.{u}"
        )
        exclusion = (
            f"CASE WHEN t.{v} IS NULL THEN 'null_variant' "
            "WHEN m.uid IS NOT NULL THEN 'multi_arm' ELSE '' END"
        )
    else:
        # a constant: grouping by a computed key costs a third of the pass; a NULL variant
        # is its own group, which the engine counts as excluded
        multi = ""
        exclusion = "''"
    sql = (
        f"SELECT CAST(t.{v} AS VARCHAR) AS variant, {second} AS variant_b, "
        f"{exclusion} AS exclusion, {', '.join(cols)} FROM {relation} t {multi}"
    )
    return sql, params


def _as_double(
    col: str, columns: Mapping[str, str], nulls: str = "missing", nan_test: bool = True
) -> str:
    """The column as DOUBLE (booleans become 0/1, NaN NULL; with `nulls="zero"` NULL 0)."""
    kind = columns.get(col.lower(), "").upper()
    q = ident(col)
    if kind == "BOOLEAN":
        # not CAST: DuckDB pushes casts into its CSV reader, which then parses 'false' as a
        # number and fails
        value = f"CASE WHEN t.{q} THEN 1.0 WHEN NOT t.{q} THEN 0.0 END"
    elif kind in ("DOUBLE", "FLOAT", "REAL") and nan_test:
        # NaN is missing like NULL (not nullif: a NaN's sign bit defeats NaN = NaN)
        value = f"CASE WHEN isnan(t.{q}) THEN NULL ELSE CAST(t.{q} AS DOUBLE) END"
    else:
        value = f"CAST(t.{q} AS DOUBLE)"  # integers and decimals have no NaN
    if nulls == "zero":
        value = f"coalesce({value}, 0.0)"
    return f"{value} AS {q}"


def _metric_expr(var: EventVariable, i: int, params: dict[str, Any]) -> str:
    names = []
    for j, event in enumerate(var.events):
        params[f"v{i}_e{j}"] = event
        names.append(f"$v{i}_e{j}")
    params[f"v{i}_w"] = round(var.window_days * _US_PER_DAY)
    span = f"to_microseconds($v{i}_w)"
    if var.pre:
        window = f"o.occurred_at < a.assigned_at AND o.occurred_at >= a.assigned_at - {span}"
    else:
        window = f"o.occurred_at > a.assigned_at AND o.occurred_at <= a.assigned_at + {span}"
    cond = f"o.event IN ({', '.join(names)}) AND {window}"
    if var.aggregation == "any":
        expr = f"CAST(count(*) FILTER (WHERE {cond}) > 0 AS DOUBLE)"
    elif var.aggregation == "count":
        expr = f"CAST(count(*) FILTER (WHERE {cond}) AS DOUBLE)"
    elif var.aggregation == "sum":
        expr = f"coalesce(sum(o.value) FILTER (WHERE {cond}), 0.0)"
    elif var.aggregation == "distinct_days":
        expr = f"CAST(count(DISTINCT CAST(o.occurred_at AS DATE)) FILTER (WHERE {cond}) AS DOUBLE)"
    else:
        raise UsageError(f"metric {var.name}: unknown aggregation {var.aggregation!r}")
    return f"{expr} AS {ident(var.name)}"


def warehouse_source(
    variables: Sequence[EventVariable],
    experiment: str,
    *,
    other: str | None = None,
    segment: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """One row per user assigned to `experiment` (and `other`, for a 2x2 factorial).

    `segment` is a column of `users` to group by (for a mix/rate decomposition).
    """
    params: dict[str, Any] = {"experiment": experiment}
    if other is not None:
        params["other"] = other
    exprs = [_metric_expr(var, i, params) for i, var in enumerate(variables)]
    events = sorted({e for var in variables for e in var.events})
    for j, event in enumerate(events):
        params[f"ev{j}"] = event
    post = [v.window_days for v in variables if not v.pre]
    pre = [v.window_days for v in variables if v.pre]
    params["max_post_us"] = round(max(post, default=0.0) * _US_PER_DAY)
    params["max_pre_us"] = round(max(pre, default=0.0) * _US_PER_DAY)
    assigned = query("experiments", "assigned-pair" if other is not None else "assigned-one")
    event_filter = (
        f"AND o.event IN ({', '.join(f'$ev{j}' for j in range(len(events)))})"
        if events
        else "AND false"
    )
    if segment:
        seg = ident(segment)
        seg_join = (
            f"LEFT JOIN (SELECT user_id, CAST(any_value({seg}) AS VARCHAR) AS seg "
            "FROM users GROUP BY user_id) s ON s.user_id = a.user_id"
        )
        seg_expr = "coalesce(s.seg, '(missing)')"
    else:
        seg_join, seg_expr = "", "NULL::VARCHAR"
    sql = (
        query("experiments", "per-user")
        .replace("/*assigned*/", assigned)
        .replace("/*segment_join*/", seg_join)
        .replace("/*segment*/", seg_expr)
        .replace("/*metrics*/", "".join(f",\n       {e}" for e in exprs))
        .replace("/*events*/", event_filter)
    )
    return sql, params


def fetch(
    con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any], where: str
) -> list[dict[str, Any]]:
    """Run a statement and return its rows as dicts; DuckDB errors name `where`.

    DuckDB draws a progress bar on stdout for queries over two seconds, even when stdout
    is a pipe; it would corrupt `--json`, so it is off while the query runs (and so is
    statistics propagation, which would hide NaN in Parquet files).
    """
    import duckdb

    row = con.execute(
        "SELECT current_setting('enable_progress_bar'), current_setting('disabled_optimizers')"
    ).fetchone()
    before = bool(row[0]) if row else False
    disabled = str(row[1] or "") if row else ""
    con.execute("SET enable_progress_bar = false")
    # Parquet min/max statistics leave NaN out, and DuckDB 2.0 folds isnan(x) to false
    # from them: a NaN would pass as a value. Statistics propagation is off for this query.
    extra = ",".join(x for x in (disabled, "statistics_propagation") if x)
    con.execute("SET disabled_optimizers = $d", {"d": extra})
    try:
        cursor = con.execute(sql, dict(params) or None)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    except duckdb.ConversionException as exc:
        raise InputError(f"{where}: {_not_numeric(str(exc))}") from None
    except duckdb.Error as exc:
        raise InputError(f"{where}: {str(exc).splitlines()[0]}") from None
    finally:
        con.execute(f"SET enable_progress_bar = {'true' if before else 'false'}")
        con.execute("SET disabled_optimizers = $d", {"d": disabled})


_CSV_VALUE = re.compile(
    r'CSV Error on Line: (\d+).*?converting column "(.+?)"\. Could not convert string "(.*?)"',
    re.DOTALL,
)


def _not_numeric(message: str) -> str:
    """DuckDB's CSV conversion error as one line naming the line, column and value (a type
    sniffed from the first rows meets a value that is not one, such as R's NA)."""
    found = _CSV_VALUE.search(message)
    if not found:
        return f"a metric column is not numeric ({message.splitlines()[0]})"
    line, column, value = found.groups()
    return (
        f"line {line}: column {column!r} holds {value!r}, not a number "
        "(a missing value is an empty cell)"
    )


def parquet_ranges(con: duckdb.DuckDBPyConnection, path: str | Path) -> dict[str, tuple[Any, Any]]:
    """Column -> (min, max) from a Parquet file's footers, for columns whose every row
    group has statistics ((None, None): only NULLs). Empty for other formats."""
    import duckdb

    if read_relation(path)[0].startswith("read_csv"):
        return {}
    try:
        rows = con.execute(query("experiments", "parquet-ranges"), {"path": str(path)}).fetchall()
    except duckdb.Error:
        return {}
    return {col: (lo, hi) for col, lo, hi, complete in rows if complete}
