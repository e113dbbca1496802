"""The validating views over one input file, as SQL: each row's contract columns typed,
its first failure (`_fail`), per the checks of `upshot.contract`, and `_ok`, true exactly
when `_fail` is NULL (the same checks as plain conjuncts: no struct is built to filter).

`stage` builds the views `upshot.load` reads: the insert appends the rows that are `_ok`
straight from them, and only a file with failing rows is read again to store those.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from upshot import contract, headers, partitions
from upshot.config import parse_size, parse_window
from upshot.contract import NAIVE, Column, TableSpec
from upshot.errors import InputError
from upshot.readers import describe
from upshot.sql import ident, literal

if TYPE_CHECKING:
    import duckdb

    from upshot.config import Config

FOLDER = headers.FOLDER


def mapped(
    con: duckdb.DuckDBPyConnection,
    path: str,
    spec: TableSpec,
    folders: dict[str, str],
    renames: dict[str, str] | None = None,
    config: Config | None = None,
    described: list[tuple[str, str]] | None = None,
) -> tuple[dict[str, tuple[str, str]], tuple[str, ...]]:
    """contract name → (source column, source type); plus the source columns ignored.
    `described`: `_src`'s columns, if known (describing a CSV view sniffs the file).

    A contract column the file lacks is read from its partition folder, if it has one.
    """
    mapping = headers.renamed(path, described or describe(con, "_src"), renames or {})
    for key in folders:
        mapping.setdefault(key, (FOLDER + key, "VARCHAR"))
    headers.require(path, spec, mapping)
    if spec.open_columns and "load_id" in mapping:
        raise InputError(f"{path}: column {mapping['load_id'][0]!r} is reserved for upshot's use")
    if config is not None:
        headers.refuse_clashes(path, spec, mapping, config)
    known = {c.name for c in spec.columns}
    ignored = () if spec.open_columns else tuple(sorted(set(mapping) - known - {"load_id"}))
    return mapping, ignored


def add_folders(con: duckdb.DuckDBPyConnection, folders: dict[str, str]) -> None:
    """Add a file's partition folders to `_src` as text columns `_folder_<key>` (NULL for
    hive's empty partition)."""
    if not folders:
        return
    consts = ", ".join(
        f"{'NULL' if partitions.is_null(v) else literal(v)}::VARCHAR AS {ident(FOLDER + k)}"
        for k, v in folders.items()
    )
    con.execute("DROP VIEW IF EXISTS _src_file")
    con.execute("ALTER VIEW _src RENAME TO _src_file")
    con.execute(f"CREATE TEMP VIEW _src AS SELECT *, {consts} FROM _src_file")


def with_folders(relation: str, folders: dict[str, str]) -> str:
    """`relation` with the partition folder columns `add_folders` gives `_src`."""
    if not folders:
        return relation
    consts = ", ".join(
        f"{'NULL' if partitions.is_null(v) else literal(v)}::VARCHAR AS {ident(FOLDER + k)}"
        for k, v in folders.items()
    )
    return f"(SELECT *, {consts} FROM {relation})"


def _mismatches(spec: TableSpec, checked: Sequence[str], tz: str) -> list[tuple[str, str]]:
    """The checks (as `contract.checks`) that a column's value equals its partition folder's."""
    found = []
    for col in spec.columns:
        if col.name not in checked:
            continue
        folder = contract.typed(col, FOLDER + col.name, "VARCHAR", tz)
        raw = ident(col.name if col.type == "VARCHAR" else "_raw_" + col.name)
        named = (
            f"{{'reason': 'partition_mismatch', 'column': {literal(col.name)}, "
            f"'raw': CAST({raw} AS VARCHAR)}}"
        )
        found.append((f"{ident(col.name)} IS DISTINCT FROM {folder}", named))
    return found


def extras(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, mapping: dict[str, tuple[str, str]]
) -> tuple[Column, ...]:
    """For the users table: one column per covariate, typed as the warehouse already has it."""
    if not spec.open_columns:
        return ()
    existing = {r[0]: r[1] for r in describe(con, ident(spec.name))}
    return tuple(
        Column(name, existing.get(name, source_type), trim=False)
        for name, (_src, source_type) in sorted(mapping.items())
        if name not in {c.name for c in spec.columns}
    )


@dataclass(frozen=True, slots=True)
class Checked:
    """The views over one file: `rows` with `_row` (the data row number), `data` without
    it (for CSV numbering rows is a window over the whole file); both carry the typed
    contract columns, `_fail` and `_ok` (true exactly when `_fail` is NULL). `keys`: the
    key columns typed, as SQL over `source`, the file read as it is (without `_row`);
    `raw`: the timestamp columns' raw values over `source`."""

    rows: str
    data: str
    source: str
    keys: dict[str, str]
    raw: dict[str, str]


def stage(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    columns: tuple[Column, ...],
    mapping: dict[str, tuple[str, str]],
    config: Config,
    checked: Sequence[str] = (),
    data: str = "_src",
    described: list[tuple[str, str]] | None = None,
) -> Checked:
    """The views over `_src` (and `data`, the same without `_row`) typed, with each row's
    first failure; `checked` columns must equal their partition folder's value;
    `described`: `_src`'s columns, if known."""
    # one instant for every pass over the file, so that they agree on "the future"
    clock_row = con.execute("SELECT CAST(now() AS VARCHAR)").fetchone()
    clock = f"CAST({literal(str(clock_row[0] if clock_row else ''))} AS TIMESTAMPTZ)"
    source_columns = described or describe(con, "_src")
    rules = validation(spec, columns, mapping, config, source_columns, clock, checked)
    raw = {
        c.name: ident(mapping[c.name][0])
        for c in columns
        if c.type == "TIMESTAMPTZ" and c.name in mapping
    }
    checks = f"{rules.fail} AS _fail, {rules.ok} AS _ok"
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW _checked AS SELECT *, {checks} "
        f"FROM (SELECT _row, {rules.body} FROM _src)"
    )
    if data == "_src":
        return Checked("_checked", "_checked", "_src", rules.keys, raw)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW _checked_data AS SELECT *, {checks} "
        f"FROM (SELECT {rules.body} FROM {data})"
    )
    return Checked("_checked", "_checked_data", data, rules.keys, raw)


def validating(
    spec: TableSpec,
    columns: tuple[Column, ...],
    mapping: dict[str, tuple[str, str]],
    config: Config,
    source_columns: list[tuple[str, str]],
    clock: str,
    checked: Sequence[str] = (),
) -> tuple[str, str, dict[str, str]]:
    """The validating SQL over a source relation with `source_columns`: the select list
    (contract columns typed, `_raw_<name>` of the non-text ones), the expression naming
    each row's first failure over that list, and the key columns' typed SQL. `load` and
    lake mode (`upshot.lake`) share it, so both reject exactly the same rows."""
    rules = validation(spec, columns, mapping, config, source_columns, clock, checked)
    return rules.body, rules.fail, rules.keys


@dataclass(frozen=True, slots=True)
class Rules:
    """`validating`'s SQL, plus `ok`: true exactly when `fail` is NULL, a plain filter
    that builds no struct (the insert's, which only needs to know that a row passes)."""

    body: str
    fail: str
    ok: str
    keys: dict[str, str]


def validation(
    spec: TableSpec,
    columns: tuple[Column, ...],
    mapping: dict[str, tuple[str, str]],
    config: Config,
    source_columns: list[tuple[str, str]],
    clock: str,
    checked: Sequence[str] = (),
) -> Rules:
    """`validating`, with the `ok` filter beside the failure."""
    tz = config.load.naive_timezone
    selects = []
    present: set[str] = set()
    keys = {}
    for col in columns:
        source, source_type = mapping.get(col.name, (None, "VARCHAR"))
        expr = contract.typed(col, source, source_type, tz)
        selects.append(f"{expr} AS {ident(col.name)}")
        if col.name in spec.key:
            keys[col.name] = expr
        if source is not None:
            present.add(col.name)
            if col.type != "VARCHAR":
                selects.append(f"{ident(source)} AS {ident('_raw_' + col.name)}")
    if "_json_ok" in {n for n, _ in source_columns}:
        selects.append("_json_ok")
    selects += [ident(FOLDER + k) for k in checked]
    oversize = _oversize(source_columns, mapping, parse_size(config.load.max_field_size, "load"))
    if oversize:
        selects.append(f"{oversize} AS _oversize")
    time_range = (
        config.load.earliest_timestamp,
        parse_window(config.load.max_future, "load.max_future") * 86400,
    )
    found = contract.checks(
        TableSpec(spec.name, columns, spec.key), present, config.load.channels, time_range, clock
    )
    found += _mismatches(spec, checked, tz) if checked else []
    fail = contract.first_failure(found)
    ok = contract.passing(found)
    if oversize:
        fail = f"coalesce(_oversize, {fail})"
        ok = f"_oversize IS NULL AND {ok}"
    if "_json_ok" in selects:
        fail = (
            "CASE WHEN NOT _json_ok THEN {'reason': 'malformed_json', 'column': NULL, "
            f"'raw': NULL}} ELSE {fail} END"
        )
        ok = f"(NOT _json_ok) IS NOT TRUE AND {ok}"
    return Rules(", ".join(selects), fail, ok, keys)


def _oversize(
    source_columns: list[tuple[str, str]], mapping: dict[str, tuple[str, str]], limit: int
) -> str | None:
    """CASE naming the first text field longer than `limit` bytes, with a prefix of it:
    one huge field quarantines its row (`field_too_large`), not the file."""
    names = {source: name for name, (source, _) in mapping.items()}
    branches = [
        f"WHEN strlen({ident(src)}) > {int(limit)} THEN {{'reason': 'field_too_large', "
        f"'column': {literal(names.get(src, src))}, "
        f"'raw': left({ident(src)}, 200) || '... (' || strlen({ident(src)}) || ' bytes)'}}"
        for src, type_ in source_columns
        if type_.upper() == "VARCHAR" and src not in ("_row",) and not src.startswith(FOLDER)
    ]
    return f"CASE {' '.join(branches)} END" if branches else None


def naive_flags(spec: TableSpec, mapping: dict[str, tuple[str, str]]) -> list[str]:
    """Per timestamp column that may carry no zone (read in `load.naive_timezone`), SQL
    over its raw value `_raw_<name>` that is true when this one does not; a column typed
    with a zone never does, and has none."""
    flags = []
    for col in spec.columns:
        if col.type != "TIMESTAMPTZ" or col.name not in mapping:
            continue
        upper = mapping[col.name][1].upper()
        if upper.startswith("TIMESTAMP WITH TIME ZONE") or upper == "TIMESTAMPTZ":
            continue
        raw = ident("_raw_" + col.name)
        flags.append(
            f"{raw} IS NOT NULL"
            if upper.startswith(("TIMESTAMP", "DATE"))
            else f"regexp_matches(trim(CAST({raw} AS VARCHAR)), {literal(NAIVE)})"
        )
    return flags


def naive_timestamps(spec: TableSpec, mapping: dict[str, tuple[str, str]]) -> str:
    """SQL counting the good values of the checked file's timestamp columns that carried
    no zone (read in `load.naive_timezone`), for the load journal and `upshot check`."""
    counts = [f"count(*) FILTER (WHERE _fail IS NULL AND {f})" for f in naive_flags(spec, mapping)]
    return " + ".join(counts) if counts else "0"
