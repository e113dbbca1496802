"""Lake mode: the contract tables read in place from a directory, without `load`.

A lake is a directory with one sub-directory per contract table, `sends/`, `outcomes/`,
`users/` and `assignments/`, each holding Parquet files, flat or hive-partitioned
(`sends/week=2026-W40/part-0.parquet`), or one file `<table>.parquet` beside them. `sends`
and `outcomes` are required; a missing `users` or `assignments` reads as an empty table,
as before anything is loaded.

`lake_tables` is the one place that resolves a lake to its tables; every engine starts
from it (DuckDB through `attach`, Spark with `spark.read.parquet(path)` on the same
directories, whose partition discovery reads the same `key=value` folders).

`attach` gives a DuckDB connection temporary views named `sends`, `outcomes`, `users` and
`assignments` that shadow the warehouse's loaded tables for the connection, so every
statement downstream runs unchanged. Each view types the columns exactly as `load` stores
them and applies `load`'s checks with the same SQL (`load_checks.validating`): the rows
`load` would quarantine are left out, and a repeated key keeps its first row (by file
path, then row in the file), as `load`'s dedupe does. `upshot check` counts what was left
out (`upshot.lake_check`); the lake itself is never written.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from upshot import contract, headers
from upshot.contract import Column, TableSpec
from upshot.errors import InputError, UsageError
from upshot.load_checks import FOLDER, validating
from upshot.readers import describe
from upshot.sql import ident, literal

if TYPE_CHECKING:
    import duckdb

    from upshot.config import Config

TABLES = ("sends", "outcomes", "users", "assignments")
REQUIRED = ("sends", "outcomes")
# the extensions that read these table formats; DuckDB downloads them on first use, which
# needs the network, so they must already be installed (`INSTALL delta` once, online)
_FORMATS = {
    "_delta_log": ("Delta", "delta", "delta_scan"),
    "metadata": ("Iceberg", "iceberg", "iceberg_scan"),
}


def lake_tables(root: str) -> dict[str, str]:
    """Each contract table present in the lake at `root` → its directory, or its one file
    `<table>.parquet` (the path to give `read_parquet` through `files`, or
    `spark.read.parquet` as it is).

    The shared entry point of lake mode for every engine. UsageError when `root`, or the
    directory of a required table (sends, outcomes), is missing.
    """
    base = Path(root)
    if not base.is_dir():
        raise UsageError(f"--lake {root}: no such directory")
    found = {t: str(base / t) for t in TABLES if (base / t).is_dir()}
    for table in TABLES:  # a table small enough to be one file may be DIR/<table>.parquet
        single = base / f"{table}.parquet"
        if table not in found and single.is_file():
            found[table] = str(single)
    for table in REQUIRED:
        if table not in found:
            raise UsageError(
                f"{base / table}: no such directory; a lake needs sends/ and outcomes/ "
                "(users/ and assignments/ are optional)"
            )
    return found


def table_format(path: str) -> str:
    """`parquet`, or `delta` / `iceberg` when the directory holds that format's metadata."""
    for marker, (_name, extension, _scan) in _FORMATS.items():
        if (Path(path) / marker).is_dir():
            return extension
    return "parquet"


def files(path: str) -> list[str]:
    """The Parquet files under `path`, sorted, recursively; hidden and `_`-prefixed files
    and folders (`_SUCCESS`, `.crc`, `_temporary/`) are writers' bookkeeping, not data."""
    if Path(path).is_file():
        return [path]
    found = []
    for folder, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        found += [
            str(Path(folder) / n)
            for n in names
            if not n.startswith(("_", ".")) and n.lower().endswith(".parquet")
        ]
    return sorted(found)


def _relation(
    con: duckdb.DuckDBPyConnection, path: str, spec: TableSpec
) -> tuple[str, tuple[str, ...]] | None:
    """The SQL relation reading the table at `path` with its file (`_file`), row (`_row`)
    and, for each contract column named by a `key=value` folder, the folder's value
    (`_folder_<key>`); and those keys. None for a directory without data files."""
    fmt = table_format(path)
    if fmt != "parquet":
        name, extension, scan = next(v for v in _FORMATS.values() if v[1] == fmt)
        row = con.execute(
            "SELECT installed FROM duckdb_extensions() WHERE extension_name = ?", [extension]
        ).fetchone()
        if not (row and row[0]):
            raise InputError(
                f"{path}: a {name} table; reading it needs DuckDB's {extension} extension, "
                f"which is not installed and cannot be downloaded without network. Install it "
                f"once online (`INSTALL {extension}`), or export the table as Parquet files"
            )
        con.execute(f"LOAD {extension}")
        return f"(SELECT *, {literal(path)} AS _file, 0 AS _row FROM {scan}({literal(path)}))", ()
    names = files(path)
    if not names:
        return None
    groups = _by_types(con, names)
    parts = []
    for text, group in groups:
        listed = ", ".join(literal(n) for n in group)
        cast = ", ".join(f"CAST({ident(c)} AS VARCHAR) AS {ident(c)}" for c in text)
        # the folders are read from `_file` below, as `load` reads them, rather than by
        # DuckDB's hive reader, whose folder value silently replaces the file's column
        parts.append(
            f"SELECT * EXCLUDE (file_row_number){' REPLACE (' + cast + ')' if cast else ''}, "
            f"file_row_number AS _row FROM read_parquet([{listed}], hive_partitioning = false, "
            "union_by_name = true, filename = '_file', file_row_number = true)"
        )
    folders = _folder_keys(path, names, {c.name for c in spec.columns})
    columns = "".join(
        f", {_folder_sql(spellings)} AS {ident(FOLDER + key)}" for key, spellings in folders.items()
    )
    return f"(SELECT *{columns} FROM ({' UNION ALL BY NAME '.join(parts)}))", tuple(folders)


def _folder_keys(root: str, names: list[str], columns: set[str]) -> dict[str, list[str]]:
    """contract column → the spellings of its `key=value` folders under `root`."""
    found: dict[str, set[str]] = {}
    for name in names:
        rel = os.path.relpath(name, root) if Path(root).is_dir() else ""
        for part in rel.replace("\\", "/").split("/")[:-1]:
            key, sep, _value = part.partition("=")
            column = contract.snake(unquote(key))
            if sep and column in columns:
                found.setdefault(column, set()).add(key)
    return {k: sorted(v) for k, v in sorted(found.items())}


def _folder_sql(spellings: list[str]) -> str:
    """The value of the deepest `<key>=value` folder of `_file` (percent-decoded; empty or
    hive's default partition is NULL), as `upshot.partitions` reads it for `load`."""
    values = []
    for key in spellings:
        raw = f"regexp_extract(_file, {literal('^.*/' + re.escape(key) + '=([^/]*)/')}, 1)"
        values.append(
            f"CASE WHEN {raw} IN ('', '__HIVE_DEFAULT_PARTITION__') THEN NULL "
            f"ELSE url_decode({raw}) END"
        )
    return values[0] if len(values) == 1 else f"coalesce({', '.join(values)})"


def _by_types(
    con: duckdb.DuckDBPyConnection, names: list[str]
) -> list[tuple[list[str], list[str]]]:
    """The files grouped by the types of the columns that differ between them (from the
    Parquet footers alone), each with those columns, which are read as text: DuckDB reads
    a column as the first file's type and fails on a file it cannot cast, where `load`
    would type (or quarantine) each file's values on their own."""
    listed = ", ".join(literal(n) for n in names)
    rows = con.execute(
        f"SELECT file_name, name, duckdb_type FROM parquet_schema([{listed}]) "
        "WHERE num_children IS NULL"
    ).fetchall()
    types: dict[str, set[str]] = {}
    for _file, name, type_ in rows:
        types.setdefault(name, set()).add(str(type_))
    mixed = sorted(n for n, t in types.items() if len(t) > 1)
    if not mixed:
        return [([], names)]
    of_file: dict[str, dict[str, str]] = {}
    for file, name, type_ in rows:
        of_file.setdefault(file, {})[name] = str(type_)
    groups: dict[tuple[str | None, ...], list[str]] = {}
    for n in names:
        have = of_file.get(n, {})
        groups.setdefault(tuple(have.get(c) for c in mixed), []).append(n)
    return [([c for c, t in zip(mixed, k, strict=True) if t], g) for k, g in groups.items()]


def _columns(spec: TableSpec, mapping: dict[str, tuple[str, str]]) -> tuple[Column, ...]:
    """The contract columns, and for users every other column as a covariate, typed as the
    file has it and sorted by name (the order `load` adds them in)."""
    if not spec.open_columns:
        return spec.columns
    known = {c.name for c in spec.columns} | {"load_id"}
    return spec.columns + tuple(
        Column(name, source_type, trim=False)
        for name, (_src, source_type) in sorted(mapping.items())
        if name not in known
    )


def _empty(spec: TableSpec) -> str:
    cols = ", ".join(f"CAST(NULL AS {c.type}) AS {ident(c.name)}" for c in spec.columns)
    return f"SELECT {cols}, CAST(NULL AS VARCHAR) AS load_id WHERE false"


@dataclass(frozen=True, slots=True)
class Source:
    """One lake table as read: `relation` (SQL, with `_file` and `_row`), the contract name
    → (source column, type) `mapping`, and the `columns` its view carries."""

    table: str
    path: str
    relation: str
    mapping: dict[str, tuple[str, str]]
    columns: tuple[Column, ...]
    described: list[tuple[str, str]]  # every source column and its type
    checked: tuple[str, ...] = ()  # columns the files have that a folder names too


def source(con: duckdb.DuckDBPyConnection, config: Config, table: str, path: str) -> Source | None:
    """The lake table at `path` as `load` would read it, or None when it holds no files.
    InputError naming `path` when it cannot be read or lacks a required column."""
    spec = contract.TABLES[table]
    try:
        read = _relation(con, path, spec)
        if read is None:
            return None
        relation, folders = read
        described = describe(con, f"(SELECT * FROM {relation})")
    except InputError:
        raise
    except Exception as exc:  # e.g. a file that is not Parquet
        raise InputError(f"{path}: cannot read as Parquet: {str(exc).splitlines()[0]}") from None
    internal = {"_file", "_row"} | {FOLDER + k for k in folders}
    data = [(n, t) for n, t in described if n not in internal]
    mapping = headers.renamed(path, data, headers.column_map(table, config, None))
    for key in folders:  # a column the files lack is read from its folder, as `load` does
        mapping.setdefault(key, (FOLDER + key, "VARCHAR"))
    try:
        headers.require(path, spec, mapping)
    except InputError as exc:
        said = str(exc).replace("nothing of this file was loaded", "lake mode reads nothing of it")
        raise InputError(said) from None
    checked = tuple(k for k in folders if mapping[k][0] != FOLDER + k)
    return Source(table, path, relation, mapping, _columns(spec, mapping), data, checked)


def _record_files(con: duckdb.DuckDBPyConnection, tables: dict[str, str]) -> None:
    """Temp table `_lake_files`: a fingerprint (path, size, mtime) per data file, from which
    `store.inputs_fingerprint` says what the estimates of a lake-mode run were made from."""
    rows = []
    for table, path in tables.items():
        for name in files(path):
            stat = Path(name).stat()
            text = f"{table}\0{name}\0{stat.st_size}\0{stat.st_mtime_ns}"
            rows.append(hashlib.sha256(text.encode()).hexdigest())
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _lake_files AS "
        "SELECT unnest(CAST($rows AS VARCHAR[])) AS fingerprint",
        {"rows": rows},
    )


def attach(con: duckdb.DuckDBPyConnection, config: Config) -> dict[str, str]:
    """Shadow the warehouse's contract tables on `con` by views over the lake at
    `config.lake.path` (see the module docstring); return `lake_tables`.

    `_lake_<table>` holds every row typed with its first failure (`_fail`, NULL when the
    row is good), its file `_file` and row `_row` (from 0); `<table>` holds the good rows,
    deduped, with the warehouse table's columns.
    """
    root = config.lake.path
    if not root:
        raise UsageError("no lake: give --lake DIR or [lake] path")
    tables = lake_tables(root)
    _record_files(con, tables)
    # one instant for every view, so that they agree on "the future"
    clock_row = con.execute("SELECT CAST(now() AS VARCHAR)").fetchone()
    clock = f"CAST({literal(str(clock_row[0] if clock_row else ''))} AS TIMESTAMPTZ)"
    for table in TABLES:
        spec = contract.TABLES[table]
        src = source(con, config, table, tables[table]) if table in tables else None
        if src is None:
            if table in REQUIRED:
                raise InputError(f"{tables[table]}: no Parquet files in it")
            con.execute(f"CREATE OR REPLACE TEMP VIEW {ident(table)} AS {_empty(spec)}")
            continue
        body, fail, _keys = validating(
            spec, src.columns, src.mapping, config, src.described, clock, src.checked
        )
        checked = ident(f"_lake_{table}")
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {checked} AS SELECT *, {fail} AS _fail "
            f"FROM (SELECT {body}, _file, _row FROM {src.relation})"
        )
        keys = ", ".join(ident(k) for k in spec.key)
        keyed = " AND ".join(f"{ident(k)} IS NOT NULL" for k in spec.key)
        # the warehouse's column order: the contract's, load_id, then users' covariates
        picked = [ident(c.name) for c in src.columns]
        picked.insert(len(spec.columns), "CAST(NULL AS VARCHAR) AS load_id")
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {ident(table)} AS SELECT {', '.join(picked)} "
            f"FROM {checked} WHERE _fail IS NULL QUALIFY NOT ({keyed}) OR "
            f"row_number() OVER (PARTITION BY {keys} ORDER BY _file, _row) = 1"
        )
    return tables
