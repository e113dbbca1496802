"""The input contract: the columns of each table, their types, and how bad values are caught.

Each check becomes a branch of one SQL `CASE` that names the first thing wrong with a row
(reason, column, raw value), so validation is part of the single pass that reads the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from upshot.sql import ident, literal

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
_NON_WORD = re.compile(r"[^0-9a-zA-Z]+")
# A text timestamp is naive only when it is a date and time with nothing after: anything
# after the time is a zone (an offset, Z, UTC, or a name such as America/New_York or CET,
# which DuckDB's TIMESTAMPTZ cast honours) or junk. DuckDB's TIMESTAMP cast drops any
# trailing text ("10:00 PM" reads as 10:00, "10:00 America/New_York" in the naive zone), so
# only NAIVE text may go through it; ZONED text goes through TIMESTAMPTZ, and anything
# else is NULL (quarantined as bad_timestamp) rather than a guess.
# (DuckDB reads 2026-11-16 and 2026/11/16 alike)
NAIVE = (
    r"^[0-9]{4}(-[0-9]{1,2}-|/[0-9]{1,2}/)[0-9]{1,2}"
    r"([T ][0-9]{1,2}:[0-9]{2}(:[0-9]{2}(\.[0-9]*)?)?)?$"
)
# an offset counts only after a time of day: the "-19" of a date-only "2026-10-19" is the day
ZONED = (
    r"[T ][0-9]{1,2}:[0-9]{2}.*([+-][0-9]{2}(:?[0-9]{2})?|Z|UTC"
    r"|\s[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*)$"
)


def snake(name: str) -> str:
    """`Send ID`, `sendId` and `SEND_ID` all become `send_id`."""
    spaced = _CAMEL.sub(r"_\1", name.strip())
    return _NON_WORD.sub("_", spaced).strip("_").lower()


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # VARCHAR | DOUBLE | BOOLEAN | TIMESTAMPTZ
    required: bool = False
    default: str | None = None  # SQL literal used when the column is absent or NULL
    lowercase: bool = False  # enumerations such as channel compare case-insensitively
    trim: bool = True  # ids and enumerations lose stray blanks; covariates load verbatim


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # dedupe key; rows whose key is NULL are not deduplicated
    open_columns: bool = False  # users: every extra column is kept as a covariate

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)


# the sends columns every decision frame carries beside the users covariates
DECISION_COLUMNS = (
    "send_id",
    "message_class",
    "channel",
    "decided_at",
    "treated",
    "propensity",
    "randomized",
)

TABLES: dict[str, TableSpec] = {
    "sends": TableSpec(
        "sends",
        (
            Column("send_id", "VARCHAR", True),
            Column("user_id", "VARCHAR", True),
            Column("message_class", "VARCHAR", True),
            Column("channel", "VARCHAR", True, lowercase=True),
            Column("decided_at", "TIMESTAMPTZ", True),
            Column("treated", "BOOLEAN", True),
            Column("propensity", "DOUBLE"),
            Column("randomized", "BOOLEAN"),
            Column("campaign_id", "VARCHAR"),
            Column("experiment_id", "VARCHAR"),
            Column("variant", "VARCHAR"),
        ),
        key=("send_id",),
    ),
    "outcomes": TableSpec(
        "outcomes",
        (
            Column("user_id", "VARCHAR", True),
            Column("occurred_at", "TIMESTAMPTZ", True),
            Column("event", "VARCHAR", True),
            Column("value", "DOUBLE", default="1.0"),
            Column("event_id", "VARCHAR"),
            Column("send_id", "VARCHAR"),
        ),
        key=("event_id",),
    ),
    "users": TableSpec("users", (Column("user_id", "VARCHAR", True),), ("user_id",), True),
    "assignments": TableSpec(
        "assignments",
        (
            Column("experiment_id", "VARCHAR", True),
            Column("user_id", "VARCHAR", True),
            Column("variant", "VARCHAR", True),
            Column("assigned_at", "TIMESTAMPTZ", True),
        ),
        key=("experiment_id", "user_id", "variant"),
    ),
}


def typed(column: Column, source: str | None, source_type: str, naive_tz: str) -> str:
    """SQL that turns the raw source column into the contract's type (NULL when it can't)."""
    if source is None:
        return f"CAST({column.default or 'NULL'} AS {column.type})"
    raw = ident(source)
    if column.type == "VARCHAR":
        text = f"CAST({raw} AS VARCHAR)"
        expr = f"NULLIF(trim({text}), '')" if column.trim else text
        expr = f"lower({expr})" if column.lowercase else expr
    elif column.type == "TIMESTAMPTZ":
        expr = _timestamp(raw, source_type, naive_tz)
    else:
        expr = f"TRY_CAST({raw} AS {column.type})"
    if column.default is not None:
        # the default fills an empty cell only: a value that does not parse stays NULL, so
        # the row is quarantined (`bad_number`), never silently given the default
        empty = f"NULLIF(trim(CAST({raw} AS VARCHAR)), '') IS NULL"
        expr = f"CASE WHEN {empty} THEN {column.default} ELSE {expr} END"
    return expr


def _timestamp(raw: str, source_type: str, naive_tz: str) -> str:
    """Offsets are honoured; naive values are read in `naive_tz` (UTC unless configured)."""
    upper = source_type.upper()
    if upper.startswith("TIMESTAMP WITH TIME ZONE") or upper == "TIMESTAMPTZ":
        return raw
    if upper.startswith(("TIMESTAMP", "DATE")):
        return f"timezone({literal(naive_tz)}, CAST({raw} AS TIMESTAMP))"
    text = f"trim(CAST({raw} AS VARCHAR))"
    if naive_tz == "UTC":
        # the session time zone is UTC, so a naive string already lands in UTC
        return f"TRY_CAST({text} AS TIMESTAMPTZ)"
    return (
        f"CASE WHEN regexp_matches({text}, {literal(NAIVE)}) "
        f"THEN timezone({literal(naive_tz)}, TRY_CAST({text} AS TIMESTAMP)) "
        f"WHEN regexp_matches({text}, {literal(ZONED)}) THEN TRY_CAST({text} AS TIMESTAMPTZ) END"
    )


def _failure_kind(sql_type: str) -> str:
    upper = sql_type.upper()
    if upper.startswith("TIMESTAMP") or upper == "DATE":
        return "bad_timestamp"
    if upper == "BOOLEAN":
        return "bad_boolean"
    if upper in ("DOUBLE", "FLOAT", "REAL", "BIGINT", "INTEGER", "SMALLINT", "HUGEINT") or (
        upper.startswith("DECIMAL")
    ):
        return "bad_number"
    return f"bad_{upper.lower()}"


def checks(
    spec: TableSpec,
    present: set[str],
    channels: tuple[str, ...],
    time_range: tuple[str, float] | None = None,
    clock: str = "now()",
) -> list[tuple[str, str]]:
    """The checks of a row, in order: (condition that is true when the row fails, the
    struct (reason, column, raw) naming that failure).

    `present` holds the contract columns the file has. Typed values are the inner query's
    columns (named after the contract); a non-text column's raw value is `_raw_<name>`.
    `time_range` (earliest date, seconds ahead of the load's clock) bounds every timestamp;
    `clock` is that clock's SQL (one fixed instant, so that every pass agrees on it).
    """
    types = {c.name: c.type for c in spec.columns}
    found: list[tuple[str, str]] = []

    def raw(column: str) -> str:
        if column not in present:
            return "NULL"
        source = column if types[column] == "VARCHAR" else "_raw_" + column
        return f"CAST({ident(source)} AS VARCHAR)"

    def add(condition: str, reason: str, column: str) -> None:
        named = f"{{'reason': {literal(reason)}, 'column': {literal(column)}, "
        named += f"'raw': {raw(column)}}}"
        found.append((condition, named))

    for col in spec.columns:
        name = ident(col.name)
        checks_raw = col.name in present and col.type != "VARCHAR"
        if col.required:
            add(
                f"{ident('_raw_' + col.name) if checks_raw else name} IS NULL",
                "null_required",
                col.name,
            )
        if checks_raw:
            add(
                f"{ident('_raw_' + col.name)} IS NOT NULL AND {name} IS NULL",
                _failure_kind(col.type),
                col.name,
            )
        if time_range and col.type == "TIMESTAMPTZ" and col.name in present:
            earliest, ahead = time_range
            add(
                f"{name} < CAST({literal(earliest)} AS TIMESTAMPTZ) OR "
                f"{name} > {clock} + to_seconds({float(ahead)!r})",
                "timestamp_out_of_range",
                col.name,
            )
    if spec.name == "sends":
        allowed = ", ".join(literal(c) for c in channels)
        add(f"{ident('channel')} NOT IN ({allowed})", "unknown_channel", "channel")
        p = ident("propensity")
        add(
            f"{p} IS NOT NULL AND NOT ({p} > 0 AND {p} <= 1)",
            "propensity_out_of_range",
            "propensity",
        )
    if spec.name == "outcomes":
        add(f"NOT isfinite({ident('value')})", "value_not_finite", "value")
    return found


def failure(
    spec: TableSpec,
    present: set[str],
    channels: tuple[str, ...],
    time_range: tuple[str, float] | None = None,
    clock: str = "now()",
) -> str:
    """One CASE naming the first problem of a row as a struct (reason, column, raw), else NULL;
    the arguments are `checks`'."""
    return first_failure(checks(spec, present, channels, time_range, clock))


def first_failure(found: list[tuple[str, str]]) -> str:
    """The CASE over `checks` naming a row's first failure, NULL for a good row."""
    if not found:
        return "NULL"
    return "CASE " + " ".join(f"WHEN {cond} THEN {name}" for cond, name in found) + " END"


def passing(found: list[tuple[str, str]]) -> str:
    """True exactly when `first_failure(found)` is NULL, without building the struct: a
    filter DuckDB evaluates as plain conjuncts (a condition that is NULL does not fire a
    CASE branch, so each must be `IS NOT TRUE`)."""
    return " AND ".join(f"({cond}) IS NOT TRUE" for cond, _ in found) or "true"
