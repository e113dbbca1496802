"""Finding input files and reading them with DuckDB, whatever their format or location.

Every reader creates the temp view `_src`: the file's columns as they are, plus `_row`,
the data row number (1-based, header excluded) that quarantine messages name.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from upshot import contract
from upshot.contract import TableSpec
from upshot.errors import UsageError
from upshot.sql import ident, literal

if TYPE_CHECKING:
    import duckdb

_FORMATS = {
    ".parquet": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
}
# DuckDB fails a whole file on a line over its limit (2 MB by default); lines up to this
# many bytes are read (one buffer each: DuckDB's default buffer of 16 lines would need 1 GiB
# per gzip stream), and a field over `[load] max_field_size` quarantines only its row
MAX_LINE = 64 * 1024 * 1024
_LINES = f"max_line_size = {MAX_LINE}, buffer_size = {MAX_LINE}"
_SUFFIXED = re.compile(r"^(.+)_[0-9]+$")
_REMOTE = ("s3://", "gs://", "gcs://", "r2://", "https://", "http://")


def file_format(path: str) -> str:
    """parquet, csv or ndjson, from the name (a `.gz` suffix is looked through)."""
    name = path.lower().removesuffix(".gz")
    for suffix, fmt in _FORMATS.items():
        if name.endswith(suffix):
            if fmt == "parquet" and path.lower().endswith(".gz"):
                break
            return fmt
    raise UsageError(f"{path}: unknown file type (expected .parquet, .csv[.gz] or .ndjson[.gz])")


def discover(paths: Sequence[str], con: duckdb.DuckDBPyConnection | None = None) -> list[str]:
    """Files named by paths, globs and directories (searched recursively), sorted, unique."""
    found: list[str] = []
    for path in paths:
        if path.startswith(_REMOTE):
            found += _remote_glob(path, con) if any(c in path for c in "*?[") else [path]
            continue
        if any(c in path for c in "*?["):
            matches = sorted(glob.glob(path, recursive=True))  # noqa: PTH207 - absolute patterns
            if not matches:
                raise UsageError(f"{path}: the pattern matches no file")
            usable = [m for m in matches if Path(m).is_file() and _known(m)]
            if not usable:
                raise UsageError(
                    f"{path}: the pattern matches no .parquet, .csv or .ndjson file "
                    f"({len(matches)} other path(s))"
                )
            found += usable
        elif Path(path).is_dir():
            inner = _walk(path)
            if not inner:
                raise UsageError(f"{path}: the directory holds no .parquet, .csv or .ndjson file")
            found += inner
        elif Path(path).is_file():
            file_format(path)
            found.append(path)
        else:
            raise UsageError(f"{path}: no such file or directory")
    return list(dict.fromkeys(found))


def _walk(root: str) -> list[str]:
    """The known files under `root`, following symlinked folders once each: a folder
    reached again (a link back up the tree, or two links to one place) is not re-entered."""
    seen: set[tuple[int, int]] = set()
    found: list[str] = []
    for folder, subfolders, names in os.walk(root, followlinks=True):
        stat = Path(folder).stat()
        if (stat.st_dev, stat.st_ino) in seen:
            subfolders[:] = []
            continue
        seen.add((stat.st_dev, stat.st_ino))
        subfolders.sort()
        found += [
            str(Path(folder) / n) for n in names if _known(n) and (Path(folder) / n).is_file()
        ]
    return sorted(found)


def _known(path: str) -> bool:
    try:
        file_format(path)
    except UsageError:
        return False
    return not Path(path).name.startswith((".", "_"))


def _remote_glob(pattern: str, con: duckdb.DuckDBPyConnection | None) -> list[str]:
    if con is None:
        raise UsageError(f"{pattern}: remote patterns need a warehouse connection")
    _enable_remote(con)
    return [r[0] for r in con.execute("SELECT file FROM glob(?) ORDER BY 1", [pattern]).fetchall()]


def _enable_remote(con: duckdb.DuckDBPyConnection) -> None:
    """httpfs with credentials from the environment only, never from arguments."""
    con.execute("INSTALL httpfs")
    con.execute("LOAD httpfs")
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        parts = [f"KEY_ID {literal(key)}", f"SECRET {literal(secret)}"]
        for env, name in (("AWS_SESSION_TOKEN", "SESSION_TOKEN"), ("AWS_REGION", "REGION")):
            if os.environ.get(env):
                parts.append(f"{name} {literal(os.environ[env])}")
        con.execute(f"CREATE OR REPLACE SECRET upshot_s3 (TYPE s3, {', '.join(parts)})")


def local_stat(path: str) -> tuple[str, int, int] | None:
    """(absolute path, size, mtime in ns) of a local file; None for remote ones."""
    if path.startswith(_REMOTE):
        return None
    stat = Path(path).stat()
    return str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns


def fingerprint(path: str, con: duckdb.DuckDBPyConnection) -> str:
    """sha256 of the file's bytes: the same content under another name is the same file."""
    if path.startswith(_REMOTE):
        _enable_remote(con)
        row = con.execute("SELECT sha256(content) FROM read_blob(?)", [path]).fetchone()
        return str(row[0]) if row else ""
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def describe(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {relation}").fetchall()]


def open_source(con: duckdb.DuckDBPyConnection, path: str, fmt: str, spec: TableSpec) -> None:
    """Create temp view `_src`: the file's columns as they are, plus its row number `_row`
    (and for CSV `_src_data`, the same without `_row`)."""
    p = literal(path)
    if fmt == "parquet":
        body = f"read_parquet({p}, file_row_number = true, hive_partitioning = false)"
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW _src AS SELECT file_row_number + 1 AS _row, "
            f"* EXCLUDE (file_row_number) FROM {body}"
        )
    elif fmt == "csv":
        # users' covariates keep the types DuckDB finds, so it must look at every row, not
        # a sample: a column of numbers with one word at row 40,000 is text, not a bad row
        typed = "false, sample_size = -1" if spec.open_columns else "true"
        con.execute("DROP TABLE IF EXISTS _rej_errors; DROP TABLE IF EXISTS _rej_scans")
        # `_row` counts accepted rows only; `_fix_csv_rows` maps it around rejected lines.
        # Quoting is RFC 4180, stated rather than sniffed: the sniffer samples the first
        # ~20,000 rows, and a file whose first quoted field comes later would be read
        # without quoting, splitting valid records at their commas and newlines.
        # `_src_data` is the file without `_row`: numbering the rows is a window over the
        # whole file, which only the passes that need a row number pay for
        con.execute(
            "CREATE OR REPLACE TEMP VIEW _src_data AS SELECT * FROM "
            f"read_csv({p}, all_varchar = {typed}, header = true, quote = '\"', escape = '\"', "
            f"{_LINES}, store_rejects = true, rejects_table = '_rej_errors', "
            "rejects_scan = '_rej_scans')"
        )
        con.execute(
            "CREATE OR REPLACE TEMP VIEW _src AS SELECT row_number() OVER () AS _row, * "
            "FROM _src_data"
        )
    else:
        _ndjson_source(con, p, spec)


def duplicate_header(
    con: duckdb.DuckDBPyConnection, path: str, described: list[tuple[str, str]] | None = None
) -> str | None:
    """The first column a CSV header names twice (DuckDB would read the second as `x_1`);
    `described`: `_src`'s columns, if known."""
    names = [n for n, _ in (described or describe(con, "_src"))]
    renamed = [n for n in names if (m := _SUFFIXED.match(n)) and m.group(1) in names]
    if not renamed:  # the header row is read again only when DuckDB had to rename a column
        return None
    row = con.execute(
        f"SELECT * FROM read_csv({literal(path)}, all_varchar = true, header = false, "
        "quote = '\"', escape = '\"') LIMIT 1"
    ).fetchone()
    seen: set[str] = set()
    for name in row or ():
        if name in seen:
            return str(name)
        seen.add(name)
    return None


# a day and a month in either order, then a year: 05/06/2026, 5.6.26, 05-06-2026 10:00
_DAY_MONTH = r"^\s*([0-9]{1,2})[/.-]([0-9]{1,2})[/.-][0-9]{2,4}"


def ambiguous_dates(
    con: duckdb.DuckDBPyConnection, path: str, described: list[tuple[str, str]]
) -> str | None:
    """The first column of a CSV whose types DuckDB found (a users file's covariates) that
    it read as dates from text like 05/06/2026 in which no value has a day above 12: DuckDB
    then reads day/month, and a month/day file would load with its days and months swapped.
    Text in ISO form (2026-06-05) or with a day above 12 in some row is not ambiguous."""
    dated = [n for n, t in described if t.upper().startswith(("DATE", "TIMESTAMP"))]
    if not dated:
        return None
    pattern = literal(_DAY_MONTH)
    counts = []
    for name in dated:
        text = f"CAST({ident(name)} AS VARCHAR)"
        first, second = (
            f"TRY_CAST(regexp_extract({text}, {pattern}, {i}) AS INTEGER)" for i in (1, 2)
        )
        counts += [
            f"count(*) FILTER (WHERE regexp_matches({text}, {pattern}))",
            (
                f"count(*) FILTER (WHERE regexp_matches({text}, {pattern}) "
                f"AND ({first} > 12 OR {second} > 12))"
            ),
        ]
    row = con.execute(
        f"SELECT {', '.join(counts)} FROM read_csv({literal(path)}, all_varchar = true, "
        f"header = true, quote = '\"', escape = '\"', {_LINES}, ignore_errors = true)"
    ).fetchone()
    for i, name in enumerate(dated):
        if row and row[2 * i] and not row[2 * i + 1]:
            return name
    return None


def csv_rejects(con: duckdb.DuckDBPyConnection, fmt: str) -> list[tuple[int, str]]:
    """The CSV lines DuckDB could not split into the header's columns: (data row, text)."""
    if fmt != "csv":
        return []
    rows = con.execute("SELECT DISTINCT line, csv_line FROM _rej_errors ORDER BY line").fetchall()
    return [(int(line) - 1, str(text)) for line, text in rows]


def fix_csv_rows(
    con: duckdb.DuckDBPyConnection, rejects: list[tuple[int, str]], table: str = "_bad"
) -> None:
    """Renumber the failed rows in `table` as data rows, counting the rejected lines
    between them."""
    if not rejects:
        return
    # the s-th accepted row is data row s + #{j : r_j - j < s}, r_j the j-th rejected row
    gaps = [row - j for j, (row, _) in enumerate(rejects, start=1)]
    con.execute(
        f"UPDATE {table} SET _row = _row + (SELECT count(*) FROM unnest($gaps) g(gap) "
        f"WHERE g.gap < {table}._row) WHERE _fail IS NOT NULL",
        {"gaps": gaps},
    )


def _ndjson_source(con: duckdb.DuckDBPyConnection, p: str, spec: TableSpec) -> None:
    if spec.open_columns:
        # covariates need their JSON types; a users file must be valid JSON throughout
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW _src AS SELECT row_number() OVER () AS _row, * "
            f"FROM read_json({p}, format = 'newline_delimited')"
        )
        return
    # read lines verbatim so that a malformed line is quarantined, not fatal
    lines = (
        f"read_csv({p}, columns = {{'line': 'VARCHAR'}}, header = false, delim = '\\x1f', "
        f"quote = '', escape = '', auto_detect = false, {_LINES})"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _lines AS SELECT row_number() OVER () AS _row, line, "
        "CASE WHEN json_valid(line) THEN json_type(line::JSON) = 'OBJECT' ELSE false END AS _ok "
        f"FROM {lines} "
        "WHERE trim(line) <> ''"
    )
    keys = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT unnest(json_keys(line::JSON)) FROM _lines WHERE _ok ORDER BY 1"
        ).fetchall()
    ]
    # every line names its own keys, so `userId` on one line and `user_id` on another agree
    spellings: dict[str, list[str]] = {}
    for key in keys:
        # a key with no usable name keeps its spelling, so _columns can name it in the error
        spellings.setdefault(contract.snake(key) or key, []).append(key)
    cols = ", ".join(
        "CASE WHEN _ok THEN coalesce("
        + ", ".join(f"line::JSON->>{literal('$.' + _json_path(k))}" for k in variants)
        + f") END AS {ident(norm)}"
        for norm, variants in spellings.items()
    )
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW _src AS SELECT _row, _ok AS _json_ok"
        f"{', ' + cols if cols else ''} FROM _lines"
    )


def _json_path(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
