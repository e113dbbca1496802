"""DuckDB SQL (the one definition, in upshot/sql/*.sql) turned into another engine's SQL.

SQLGlot parses the statement as DuckDB and writes it in the target dialect; every fix-up
the translation needs lives here, applied to the parsed tree, never to text:

- bound values (`$name`) become typed literals of the tree (strings quoted by the writer;
  floats as DOUBLE, never Spark's DECIMAL reading of `0.1`; timestamps in UTC), so one
  statement runs the same on an engine whose parameter style differs;
- `quantile_cont(x, q)` becomes Spark's `percentile(x, q)` (the same interpolation);
- `any_value(x ORDER BY x)`, DuckDB's ordered aggregate, becomes `min(x)`, its value;
- a decimal literal such as `1.0` becomes a DOUBLE on Spark, where `1.0` is a DECIMAL and
  `CASE ... THEN 1.0 ELSE 0.0 END` would sum as a decimal (DuckDB reads it as a DECIMAL
  too, but every place upshot writes one mixes it with a DOUBLE, so DOUBLE is its value);
- `read_parquet($path)` / `read_csv($path, ...)` become the table the engine registered
  for that file (`relations`);
- DuckDB-only functions become Spark's: `to_seconds(x)` / `to_microseconds(x)` an
  interval of x seconds / microseconds, `strlen` `octet_length`, `isfinite(x)` a test
  for NaN and infinity, `timezone('UTC', t)` a cast, `'infinity'::TIMESTAMPTZ` the largest timestamp
  (Spark has no infinite timestamps), `DISTINCT ON (k) ... ORDER BY k, ...` a
  `row_number()` window, `epoch_us(x)` Spark's `unix_micros(x)`, and a CTE's
  `AS MATERIALIZED` hint (Spark has none; it decides what to cache) is dropped;
- `count(DISTINCT CAST(x AS DATE))` becomes the size of the set of days (`_distinct_days`):
  the same count without the Expand Spark plans for a distinct aggregate;
- DuckDB's `ASOF LEFT JOIN` (Spark has none) becomes one running window over both sides
  (`_asof`).

A statement SQLGlot cannot translate raises `TranspileError` naming the statement: an
engine never runs an approximation of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import sqlglot
from sqlglot import exp

from upshot.errors import UpshotError

DIALECTS = ("duckdb", "spark", "bigquery", "snowflake")
# Spark's timestamps span years 1-9999: the bounds stand for DuckDB's infinities
_SPARK_MIN = "0001-01-01 00:00:00"
_SPARK_MAX = "9999-12-31 23:59:59.999999"


class TranspileError(UpshotError):
    """A statement that cannot be translated to the engine's dialect."""


def transpile(
    sql: str,
    dialect: str,
    *,
    name: str,
    params: Mapping[str, Any] | None = None,
    relations: Callable[[str, str], str] | None = None,
) -> str:
    """`sql` (DuckDB) written in `dialect`, with `params` bound as literals.

    `name` names the statement in errors. `relations(kind, path)` returns the table name
    standing for a `read_parquet`/`read_csv` of `path` (kind "parquet" or "csv").
    """
    if dialect not in DIALECTS:
        raise TranspileError(f"{name}: unknown dialect {dialect!r}")
    try:
        tree: exp.Expression = sqlglot.parse_one(sql, read="duckdb")  # type: ignore[assignment]
    except sqlglot.errors.ParseError as exc:
        raise TranspileError(f"{name}: SQLGlot cannot parse it ({_first(exc)})") from None
    if params is not None:
        tree = _bind(tree, params, dialect, name)
    if relations is not None:
        tree = _relations(tree, relations, name)
    if dialect != "duckdb":
        tree = _portable(tree)
    if dialect == "spark":
        try:
            tree = _spark(tree)
        except TranspileError as exc:
            raise TranspileError(f"{name}: cannot be written for spark ({exc})") from None
    try:
        return tree.sql(dialect=dialect, unsupported_level=sqlglot.ErrorLevel.RAISE)
    except (sqlglot.errors.UnsupportedError, sqlglot.errors.SqlglotError) as exc:
        raise TranspileError(f"{name}: cannot be written for {dialect} ({_first(exc)})") from None


def split_order(sql: str) -> tuple[str, str]:
    """A DuckDB statement ending in `ORDER BY` of its own output columns, as the statement
    without it and the order by those columns' names (DuckDB SQL both); `(sql, "")` for
    any other statement (no order, a LIMIT, DISTINCT, a set operation, an order by an
    expression or a column it does not output): that order cannot be applied afterwards."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError:
        return sql, ""
    order = tree.args.get("order") if isinstance(tree, exp.Select) else None
    if order is None or tree.args.get("limit") or tree.args.get("offset"):
        return sql, ""
    if tree.args.get("distinct") is not None:
        return sql, ""
    outputs = {e.alias_or_name for e in tree.expressions}
    # `p.x` names the source's x: it is the output x only where the output is `p.x` itself
    passed = {(e.table, e.name) for e in tree.expressions if isinstance(e, exp.Column)}
    keys = []
    for key in order.expressions:
        column = key.this
        if not isinstance(column, exp.Column) or "*" in outputs:
            return sql, ""
        if column.table and (column.table, column.name) not in passed:
            return sql, ""
        if not column.table and column.name not in outputs:
            return sql, ""
        plain = key.copy()
        plain.set("this", exp.column(column.name, quoted=True))
        keys.append(plain.sql(dialect="duckdb"))
    body = tree.copy()
    body.set("order", None)
    return body.sql(dialect="duckdb"), ", ".join(keys)


def _first(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def literal(value: Any, dialect: str) -> exp.Expression:
    """A Python value as a typed SQL literal."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return exp.cast(exp.Literal.string(str(value)), exp.DataType.Type.DOUBLE)
        text = repr(value)
        # DuckDB: a literal with an exponent is a DOUBLE; Spark: a 'D' suffix; both exact
        return exp.cast(exp.Literal.string(text), exp.DataType.Type.DOUBLE)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        kind = exp.DataType.Type.TIMESTAMP
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), kind)
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, list | tuple):
        return exp.Array(expressions=[literal(v, dialect) for v in value])
    raise TranspileError(f"cannot bind a value of type {type(value).__name__}")


def _bind(
    tree: exp.Expression, params: Mapping[str, Any], dialect: str, name: str
) -> exp.Expression:
    def bind(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder | exp.Parameter):
            key = str(node.name)
            if key not in params:
                raise TranspileError(f"{name}: no value bound for ${key}")
            value = params[key]
            if value is None and isinstance(node.parent, exp.Cast):
                return exp.Null()
            if isinstance(value, list | tuple) and not value:
                # an empty array literal has no element type: the cast around it gives one
                return exp.Array(expressions=[])
            return literal(value, dialect)
        return node

    return tree.transform(bind, copy=True)


def _relations(
    tree: exp.Expression, relations: Callable[[str, str], str], name: str
) -> exp.Expression:
    def swap(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Table):
            return node
        func = node.this
        fname = ""
        args: list[exp.Expression] = []
        if isinstance(func, exp.ReadParquet):
            fname, args = "read_parquet", list(func.expressions)
        elif isinstance(func, exp.ReadCSV):
            fname, args = "read_csv", [func.this]
        elif isinstance(func, exp.Anonymous) and str(func.this).lower() in (
            "read_parquet",
            "read_csv",
            "read_csv_auto",
        ):
            fname, args = str(func.this).lower(), list(func.expressions)
        if not fname:
            return node
        first = args[0] if args else None
        if not isinstance(first, exp.Literal) or not first.is_string:
            raise TranspileError(f"{name}: {fname} of something other than a bound path")
        kind = "parquet" if fname == "read_parquet" else "csv"
        table = exp.to_table(relations(kind, first.this))
        if node.alias:
            table.set("alias", node.args.get("alias"))
        return table

    return tree.transform(swap, copy=False)


def _portable(tree: exp.Expression) -> exp.Expression:
    """DuckDB idioms other engines spell differently, rewritten to their exact equivalent:
    `any_value(x ORDER BY x)` (the first non-NULL x in order) is `min(x)`."""

    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.AnyValue) and isinstance(node.this, exp.Order):
            order = node.this
            keys = order.expressions
            if len(keys) == 1 and not keys[0].args.get("desc") and keys[0].this == order.this:
                return exp.Min(this=order.this.copy())
        if isinstance(node, exp.IgnoreNulls) and isinstance(node.this, exp.Min):
            return node.this
        return node

    return tree.transform(fix, copy=False)


def _seconds(node: exp.Expression, scale: float) -> exp.Expression:
    """An interval of `node` seconds (times `scale`), exact to the microsecond."""
    arg = node.expressions[0] if isinstance(node, exp.Anonymous) else node.this
    secs = arg if scale == 1.0 else exp.Div(this=arg, expression=exp.Literal.number(1_000_000))
    dec = exp.cast(secs, exp.DataType.build("DECIMAL(18, 6)"))
    zero = exp.Literal.number(0)
    return exp.Anonymous(this="make_dt_interval", expressions=[zero, zero, zero, dec])


def _spark(tree: exp.Expression) -> exp.Expression:
    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous):
            fname = str(node.this).lower()
            if fname == "to_seconds":
                return _seconds(node, 1.0)
            if fname == "to_microseconds":
                return _seconds(node, 1e-6)
            fixed = _lake_function(fname, node)
            if fixed is not None:
                return fixed
            if fname == "epoch_us":
                return exp.Anonymous(this="unix_micros", expressions=list(node.expressions))
        if isinstance(node, exp.CTE) and node.args.get("materialized") is not None:
            node.set("materialized", None)
        if isinstance(node, exp.PercentileCont) and node.args.get("expression") is not None:
            # quantile_cont(x, q): Spark's percentile interpolates between the same ranks,
            # (n - 1) * q (SQLGlot writes a PERCENTILE_CONT Spark refuses)
            args = [node.this.copy(), node.args["expression"].copy()]
            return exp.Anonymous(this="percentile", expressions=args)
        if isinstance(node, exp.Literal) and not node.is_string:
            text = str(node.this)
            if ("." in text or "e" in text.lower()) and not isinstance(node.parent, exp.Cast):
                return exp.cast(exp.Literal.string(text), exp.DataType.Type.DOUBLE)
        if (
            isinstance(node, exp.Cast)
            and isinstance(node.this, exp.Literal)
            and node.this.is_string
            and node.to.is_type(*exp.DataType.TEMPORAL_TYPES)
        ):
            text = str(node.this.this).strip().lower()
            if text in ("infinity", "-infinity"):
                bound = _SPARK_MIN if text.startswith("-") else _SPARK_MAX
                return exp.cast(exp.Literal.string(bound), exp.DataType.Type.TIMESTAMP)
        days = _distinct_days(node)
        if days is not None:  # a new node is not walked: its insides are fixed here
            return days.transform(fix, copy=False)
        if isinstance(node, exp.Select) and any(
            str(j.args.get("method") or "").upper() == "ASOF" for j in node.args.get("joins") or []
        ):
            return _asof(node)
        if isinstance(node, exp.Select) and node.args.get("distinct") is not None:
            return _distinct_on(node)
        return node

    return tree.transform(fix, copy=False)


def _distinct_days(node: exp.Expression) -> exp.Expression | None:
    """`count(DISTINCT CAST(x AS DATE))` [FILTER (WHERE c)] as `size(collect_set(...))`.

    Spark plans a distinct aggregate beside others as an Expand: every input row copied
    once per distinct group, then three aggregations and two shuffles (the decision
    frame's join rows, at 10M decisions, most of its time). A set of days is small
    whatever the group (a few thousand at most), so collecting it is safe; the count is
    the same (NULLs left out, 0 for an empty group)."""
    count, where = node, None
    if isinstance(node, exp.Filter):
        count, where = node.this, node.expression
    if not isinstance(count, exp.Count) or not isinstance(count.this, exp.Distinct):
        return None
    args = count.this.expressions
    if len(args) != 1 or not (isinstance(args[0], exp.Cast) and args[0].to.is_type("date")):
        return None
    days: exp.Expression = exp.Anonymous(this="collect_set", expressions=[args[0].copy()])
    if where is not None:
        days = exp.Filter(this=days, expression=where.copy())
    return exp.Anonymous(this="size", expressions=[days])


def _lake_function(fname: str, node: exp.Anonymous) -> exp.Expression | None:
    """The functions of `load`'s checks (`load_checks.validating`) Spark spells otherwise:
    `strlen` counts bytes (Spark's `length` counts characters, `octet_length` bytes);
    `isfinite(x)` is neither NaN nor infinite, NULL for NULL (Spark's `isnan(NULL)` is
    false, so the `abs` term carries the NULL); `timezone('UTC', t)` reads a naive `t` as
    UTC, which is a cast in a UTC session (another zone is left as it is and refused)."""
    args = node.expressions
    if fname == "strlen" and len(args) == 1:
        return exp.Anonymous(this="octet_length", expressions=[args[0].copy()])
    if fname == "isfinite" and len(args) == 1:
        nan = exp.Anonymous(this="isnan", expressions=[args[0].copy()])
        inf = exp.cast(exp.Literal.string("Infinity"), exp.DataType.Type.DOUBLE)
        big = exp.EQ(this=exp.Abs(this=args[0].copy()), expression=inf)
        return exp.Not(this=exp.Paren(this=exp.Or(this=nan, expression=big)))
    zone = args[0] if args else None
    utc = isinstance(zone, exp.Literal) and zone.is_string and str(zone.this).upper() == "UTC"
    if fname == "timezone" and len(args) == 2 and utc:
        return exp.cast(args[1].copy(), exp.DataType.Type.TIMESTAMP)
    return None


def _distinct_on(select: exp.Select) -> exp.Expression:
    """`SELECT DISTINCT ON (k) * FROM t ORDER BY k, o` as the first row per k by o."""
    distinct = select.args["distinct"]
    on = distinct.args.get("on")
    if on is None:
        return select
    keys = list(on.expressions) if isinstance(on, exp.Tuple) else [on]
    order = select.args.get("order")
    ordered = list(order.expressions) if order else []
    number = exp.Window(
        this=exp.RowNumber(),
        partition_by=[k.copy() for k in keys],
        order=exp.Order(expressions=[o.copy() for o in ordered]) if ordered else None,
    )
    inner = select.copy()
    inner.set("distinct", None)
    inner.set("order", None)
    inner = inner.select(exp.alias_(number, "_upshot_rank"), copy=False)
    projected = [
        exp.Column(this=e.this.copy()) if isinstance(e, exp.Alias) else e.copy()
        for e in select.expressions
    ]
    # a `*` keeps the rank column too (Spark has no `* EXCEPT`): readers name their columns
    return (
        exp.select(*projected)
        .from_(exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("_r"))))
        .where(exp.EQ(this=exp.column("_upshot_rank"), expression=exp.Literal.number(1)))
    )


# `c.x OP t.y` -> (order of the time column, which side comes first at a tie): the match of
# a left row is the last right row before it in that order (see `_asof`)
_ASOF_ORDER = {
    "gt": ("DESC", "DESC"),  # the smallest x > y: a right row at y is not after it
    "gte": ("DESC", "ASC"),  # the smallest x >= y: a right row at y is
    "lt": ("ASC", "DESC"),  # the largest x < y
    "lte": ("ASC", "ASC"),  # the largest x <= y
}
_FLIP = {"gt": "lt", "lt": "gt", "gte": "lte", "lte": "gte"}


def _asof(select: exp.Select) -> exp.Expression:
    """`FROM l AS t ASOF LEFT JOIN r AS c ON t.k = c.k AND c.x > t.y` without an ASOF join.

    Both sides go into one stream per key (`t`'s rows as a struct `_upshot_l`, `c`'s as
    `_upshot_r`), ordered by time so that the rows a left row may match come before it
    (for `>`: time descending, and at a tie the left row first, since a right row at the
    same instant is not strictly after it); the last non-NULL right row up to each left
    row is its match: a running window, one sort per key, no pairs. The result has one
    struct column per alias, so `t.user_id` and `c.value` read the same fields as before.
    DuckDB matches one of several right rows at the same instant arbitrarily; here the
    least of them (by their columns in order), so that the result is deterministic.
    Rows with a NULL key or time never match, as in DuckDB.
    """
    joins = select.args.get("joins") or []
    join = joins[0]
    side = str(join.args.get("side") or "").upper()
    source = select.args.get("from_")
    if len(joins) != 1 or side != "LEFT" or source is None or join.args.get("using"):
        raise TranspileError("an ASOF join other than one `ASOF LEFT JOIN ... ON`")
    left, right = source.this, join.this
    t, c = left.alias_or_name, right.alias_or_name
    keys: list[tuple[exp.Expression, exp.Expression]] = []
    times: tuple[exp.Expression, exp.Expression] | None = None
    op: str | None = None
    for cond in (
        join.args["on"].flatten() if isinstance(join.args["on"], exp.And) else [join.args["on"]]
    ):
        a, b = cond.this, cond.expression
        if not (isinstance(a, exp.Column) and isinstance(b, exp.Column)):
            raise TranspileError(f"ASOF condition {cond.sql()}: not column against column")
        kind = cond.key  # eq, gt, gte, lt, lte
        if a.table == t:  # written `t.y OP c.x`: read it as `c.x OP' t.y`
            a, b = b, a
            kind = _FLIP.get(kind, kind)
        if a.table != c or b.table != t:
            raise TranspileError(f"ASOF condition {cond.sql()}: names neither side by alias")
        if kind == "eq":
            keys.append((b, a))
        elif kind in _ASOF_ORDER and times is None:
            times, op = (b, a), kind
        else:
            raise TranspileError(f"ASOF condition {cond.sql()}: not = or one inequality")
    if times is None or op is None or not keys:
        raise TranspileError("an ASOF join needs an equality and one inequality")
    order, tie = _ASOF_ORDER[op]

    def sql(node: exp.Expression) -> str:
        return node.sql(dialect="spark")

    names = [f"_upshot_k{i}" for i in range(len(keys))]
    lkeys = ", ".join(f"{sql(lk)} AS {n}" for (lk, _), n in zip(keys, names, strict=True))
    rkeys = ", ".join(sql(rk) for _, rk in keys)
    present = " AND ".join(f"{sql(e)} IS NOT NULL" for e in [*(rk for _, rk in keys), times[1]])
    text = f"""
    SELECT _upshot_l AS {t}, _upshot_match AS {c} FROM (
        SELECT _upshot_side, _upshot_l,
            CASE WHEN _upshot_at IS NOT NULL THEN last(_upshot_r, TRUE) OVER (
                PARTITION BY {", ".join(names)}
                ORDER BY _upshot_at {order}, _upshot_side {tie}, _upshot_r DESC
                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
            ) END AS _upshot_match
        FROM (
            SELECT {lkeys}, {sql(times[0])} AS _upshot_at, 1 AS _upshot_side,
                struct({t}.*) AS _upshot_l, NULL AS _upshot_r
            FROM _upshot_left
            UNION ALL
            SELECT {rkeys}, {sql(times[1])}, 0, NULL, struct({c}.*)
            FROM _upshot_right
            WHERE {present}
        )
    ) WHERE _upshot_side = 1
    """
    stream: exp.Expression = sqlglot.parse_one(text, read="spark")  # type: ignore[assignment]

    def place(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and node.name in ("_upshot_left", "_upshot_right"):
            return (left if node.name == "_upshot_left" else right).copy()
        return node

    stream = stream.transform(place, copy=False)
    out = select.copy()
    out.set("joins", None)
    alias = exp.TableAlias(this=exp.to_identifier("_upshot_asof"))
    out.set("from_", exp.From(this=exp.Subquery(this=stream, alias=alias)))
    # a replaced node's children are not visited by the transform that replaced it
    return _spark(out)


_SPARK_TYPES = {
    "boolean": "BOOLEAN",
    "tinyint": "TINYINT",
    "smallint": "SMALLINT",
    "int": "INTEGER",
    "bigint": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "string": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "timestamp_ntz": "TIMESTAMP",
    "binary": "BLOB",
}


def duck_type(spark: str) -> str:
    """The DuckDB type of a Spark `simpleString()` type, for comparing schemas."""
    if spark.startswith("decimal"):
        return spark.upper()
    return _SPARK_TYPES.get(spark, spark.upper())
