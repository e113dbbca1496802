"""Reading, validating, quarantining and appending logs, one file at a time.

Each file is read by DuckDB in one pass into a staging table whose rows carry their
first validation failure, if any. Then, in one transaction, the bad rows go to
`quarantine`, the good rows not seen before go to the target table, and the file's
fingerprint goes to `_loads`: a file loads entirely (minus quarantined rows) or not at
all, even if the process is killed mid-way (DuckDB rolls the transaction back).
"""

from __future__ import annotations

import glob
import hashlib
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from upshot import contract
from upshot.contract import Column, TableSpec
from upshot.errors import DataQualityError, InputError, UsageError
from upshot.results import ResultsMixin
from upshot.sql import ident, literal, query
from upshot.store import transaction, writing

if TYPE_CHECKING:
    import duckdb

    from upshot.config import Config

_FORMATS = {
    ".parquet": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
}
_REMOTE = ("s3://", "gs://", "gcs://", "r2://", "https://", "http://")


@dataclass(frozen=True, slots=True)
class FileReport:
    """What happened to one input file; counts are rows."""

    source: str
    table: str
    status: str  # loaded | already_loaded
    rows_read: int = 0
    rows_accepted: int = 0
    duplicates_skipped: int = 0
    rows_quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    ignored_columns: tuple[str, ...] = ()
    fingerprint: str = ""

    @property
    def reject_rate(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0


@dataclass(frozen=True, slots=True)
class LoadReport(ResultsMixin):
    """Every file of one `upshot load`, plus the reject gate that applied to them."""

    table: str
    files: tuple[FileReport, ...]
    max_reject_rate: float

    def to_dicts(self) -> list[dict[str, Any]]:
        return [
            {
                "source": f.source,
                "status": f.status,
                "rows_read": f.rows_read,
                "rows_accepted": f.rows_accepted,
                "duplicates_skipped": f.duplicates_skipped,
                "rows_quarantined": f.rows_quarantined,
                "rel_rejected": f.reject_rate,
            }
            for f in self.files
        ]

    @property
    def reasons(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for f in self.files:
            for reason, count in f.reasons.items():
                total[reason] = total.get(reason, 0) + count
        return dict(sorted(total.items()))

    @property
    def over_gate(self) -> tuple[FileReport, ...]:
        return tuple(f for f in self.files if f.reject_rate > self.max_reject_rate)

    def document(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "files": [
                {**d, "reasons": f.reasons, "ignored_columns": list(f.ignored_columns)}
                for d, f in zip(self.to_dicts(), self.files, strict=True)
            ],
            "totals": {
                "files": len(self.files),
                "rows_accepted": sum(f.rows_accepted for f in self.files),
                "duplicates_skipped": sum(f.duplicates_skipped for f in self.files),
                "rows_quarantined": sum(f.rows_quarantined for f in self.files),
                "quarantined_by_reason": self.reasons,
            },
            "max_reject_rate": self.max_reject_rate,
            "gate_exceeded": [f.source for f in self.over_gate],
        }


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
            found += [m for m in matches if Path(m).is_file() and _known(m)]
        elif Path(path).is_dir():
            inner = sorted(str(p) for p in Path(path).rglob("*") if p.is_file() and _known(str(p)))
            if not inner:
                raise UsageError(f"{path}: the directory holds no .parquet, .csv or .ndjson file")
            found += inner
        elif Path(path).is_file():
            file_format(path)
            found.append(path)
        else:
            raise UsageError(f"{path}: no such file or directory")
    return list(dict.fromkeys(found))


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


def fingerprint(path: str, con: duckdb.DuckDBPyConnection) -> str:
    """sha256 of the file's bytes: the same content under another name is the same file."""
    if path.startswith(_REMOTE):
        _enable_remote(con)
        row = con.execute("SELECT sha256(content) FROM read_blob(?)", [path]).fetchone()
        return str(row[0]) if row else ""
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _describe(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {relation}").fetchall()]


def _source(
    con: duckdb.DuckDBPyConnection, path: str, fmt: str, spec: TableSpec
) -> tuple[str, list[tuple[int, str]]]:
    """Create temp view `_src` (columns as in the file, plus `_row`); return CSV rejects."""
    p = literal(path)
    rejects: list[tuple[int, str]] = []
    if fmt == "parquet":
        body = f"read_parquet({p}, file_row_number = true, hive_partitioning = false)"
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW _src AS SELECT file_row_number + 1 AS _row, "
            f"* EXCLUDE (file_row_number) FROM {body}"
        )
    elif fmt == "csv":
        typed = "false" if spec.open_columns else "true"
        con.execute("DROP TABLE IF EXISTS _rej_errors; DROP TABLE IF EXISTS _rej_scans")
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _csv AS SELECT row_number() OVER () AS _seq, * FROM "
            f"read_csv({p}, all_varchar = {typed}, header = true, store_rejects = true, "
            f"rejects_table = '_rej_errors', rejects_scan = '_rej_scans')"
        )
        rejects = [
            (int(r[0]) - 1, str(r[1]))
            for r in con.execute(
                "SELECT DISTINCT line, csv_line FROM _rej_errors ORDER BY line"
            ).fetchall()
        ]
        con.execute(_csv_rows_sql(len(rejects)))
    else:
        _ndjson_source(con, p, spec)
    return "_src", rejects


def _csv_rows_sql(n_rejects: int) -> str:
    """Map the sequence of accepted CSV rows back to data-row numbers around the rejects."""
    if not n_rejects:
        return "CREATE OR REPLACE TEMP VIEW _src AS SELECT _seq AS _row, * EXCLUDE (_seq) FROM _csv"
    # the s-th accepted row is data row s + #{j : r_j - j < s}, r_j the j-th rejected row
    return (
        "CREATE OR REPLACE TEMP VIEW _src AS "
        "WITH rej AS (SELECT line - 1 - row_number() OVER (ORDER BY line) AS gap "
        "FROM (SELECT DISTINCT line FROM _rej_errors)) "
        "SELECT c._seq + (SELECT count(*) FROM rej WHERE rej.gap < c._seq) AS _row, "
        "c.* EXCLUDE (_seq) FROM _csv c"
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
        "quote = '', escape = '', auto_detect = false)"
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


def _columns(
    con: duckdb.DuckDBPyConnection, path: str, spec: TableSpec
) -> tuple[dict[str, tuple[str, str]], tuple[str, ...]]:
    """contract name → (source column, source type); plus the source columns ignored."""
    mapping: dict[str, tuple[str, str]] = {}
    for name, type_ in _describe(con, "_src"):
        if name in ("_row", "_json_ok"):
            continue
        norm = contract.snake(name)
        if not norm:
            raise InputError(f"{path}: column {name!r} has no letters or digits to name it by")
        if norm in mapping:
            raise InputError(
                f"{path}: columns {mapping[norm][0]!r} and {name!r} both mean {norm!r}"
            )
        mapping[norm] = (name, type_)
    missing = [c for c in spec.required if c not in mapping]
    if missing:
        raise InputError(
            f"{path}: missing required column {missing[0]!r} for table {spec.name}; "
            "nothing of this file was loaded"
        )
    if spec.open_columns and "load_id" in mapping:
        raise InputError(f"{path}: column {mapping['load_id'][0]!r} is reserved for upshot's use")
    known = {c.name for c in spec.columns}
    ignored = () if spec.open_columns else tuple(sorted(set(mapping) - known - {"load_id"}))
    return mapping, ignored


def _extras(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, mapping: dict[str, tuple[str, str]]
) -> tuple[Column, ...]:
    """For the users table: one column per covariate, typed as the warehouse already has it."""
    if not spec.open_columns:
        return ()
    existing = {r[0]: r[1] for r in _describe(con, ident(spec.name))}
    return tuple(
        Column(name, existing.get(name, source_type))
        for name, (_src, source_type) in sorted(mapping.items())
        if name not in {c.name for c in spec.columns}
    )


def _stage(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    columns: tuple[Column, ...],
    mapping: dict[str, tuple[str, str]],
    config: Config,
) -> None:
    tz = config.load.naive_timezone
    selects = ["_row"]
    present: set[str] = set()
    for col in columns:
        source, source_type = mapping.get(col.name, (None, "VARCHAR"))
        selects.append(f"{contract.typed(col, source, source_type, tz)} AS {ident(col.name)}")
        if source is not None:
            present.add(col.name)
            if col.type != "VARCHAR":
                selects.append(f"{ident(source)} AS {ident('_raw_' + col.name)}")
    if "_json_ok" in {n for n, _ in _describe(con, "_src")}:
        selects.append("_json_ok")
    fail = contract.failure(TableSpec(spec.name, columns, spec.key), present, config.load.channels)
    if "_json_ok" in selects:
        fail = (
            "CASE WHEN NOT _json_ok THEN {'reason': 'malformed_json', 'column': NULL, "
            f"'raw': NULL}} ELSE {fail} END"
        )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _stage AS SELECT *, {fail} AS _fail "
        f"FROM (SELECT {', '.join(selects)} FROM _src)"
    )


def _insert(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, columns: tuple[Column, ...], load_id: str
) -> int:
    """Append the good rows whose key is new (first occurrence in the file wins)."""
    cols = ", ".join(ident(c.name) for c in columns)
    picked = ", ".join(f"f.{ident(c.name)}" for c in columns)
    keys = [ident(k) for k in spec.key]
    unkeyed = " OR ".join(f"{k} IS NULL" for k in keys)
    unkeyed_f = " OR ".join(f"f.{k} IS NULL" for k in keys)
    same_key = " AND ".join(f"t.{k} = f.{k}" for k in keys)
    sql = (
        f"INSERT INTO {ident(spec.name)} ({cols}, load_id) SELECT {picked}, $load_id FROM ("
        f"SELECT * FROM _stage WHERE _fail IS NULL QUALIFY {unkeyed} OR "
        f"row_number() OVER (PARTITION BY {', '.join(keys)} ORDER BY _row) = 1) f "
        f"WHERE {unkeyed_f} OR NOT EXISTS (SELECT 1 FROM {ident(spec.name)} t WHERE {same_key})"
    )
    row = con.execute(sql, {"load_id": load_id}).fetchone()
    return int(row[0]) if row else 0


def load_file(con: duckdb.DuckDBPyConnection, table: str, path: str, config: Config) -> FileReport:
    """Load one file into `table` in one transaction; see the module docstring."""
    spec = table_spec(table)
    digest = fingerprint(path, con)
    seen = con.execute(query("load", "fingerprint-seen"), [digest, table]).fetchone()
    if seen and seen[0]:
        return FileReport(path, table, "already_loaded", fingerprint=digest)
    fmt = file_format(path)
    try:
        _, rejects = _source(con, path, fmt, spec)
        mapping, ignored = _columns(con, path, spec)
    except InputError:
        raise
    except Exception as exc:  # DuckDB could not read it at all: name the file, load nothing
        raise InputError(f"{path}: cannot read as {fmt}: {str(exc).splitlines()[0]}") from None
    columns = spec.columns + _extras(con, spec, mapping)
    _stage(con, spec, columns, mapping, config)
    load_id = f"{table}-{digest[:12]}-{uuid.uuid4().hex[:6]}"
    with transaction(con):
        for col in columns[len(spec.columns) :]:
            con.execute(
                f"ALTER TABLE {ident(spec.name)} ADD COLUMN IF NOT EXISTS "
                f"{ident(col.name)} {col.type}"
            )
        con.execute(query("load", "quarantine-staged"), [load_id, path, table])
        for line, raw in rejects:
            con.execute(
                "INSERT INTO quarantine VALUES (?, ?, ?, ?, NULL, 'malformed_row', ?)",
                [load_id, path, table, line, raw],
            )
        accepted = _insert(con, spec, columns, load_id)
        counts = con.execute(query("load", "stage-counts")).fetchone()
        read, bad = (int(counts[0]), int(counts[1])) if counts else (0, 0)
        read, bad = read + len(rejects), bad + len(rejects)
        duplicates = read - bad - accepted
        con.execute(
            query("load", "record-load"),
            [load_id, digest, path, table, read, accepted, duplicates, bad],
        )
    reasons = dict(con.execute(query("load", "stage-reasons")).fetchall())
    if rejects:
        reasons["malformed_row"] = reasons.get("malformed_row", 0) + len(rejects)
    con.execute("DROP TABLE IF EXISTS _stage")
    return FileReport(
        path, table, "loaded", read, accepted, duplicates, bad, reasons, ignored, digest
    )


def table_spec(table: str) -> TableSpec:
    if table not in contract.TABLES:
        raise UsageError(f"table == {table!r}, must be one of {', '.join(contract.TABLES)}")
    return contract.TABLES[table]


def load(
    db_path: str,
    table: str,
    paths: Sequence[str],
    *,
    config: Config,
    max_reject_rate: float | None = None,
    on_file: Callable[[int, int, str], None] | None = None,
) -> LoadReport:
    """Load every file named by `paths` into `table`; raise DataQualityError past the gate.

    The gate is checked after every file has loaded, so good rows are never lost; the
    error carries the report (`exc.report`) for the caller to print.
    """
    table_spec(table)
    gate = config.load.max_reject_rate if max_reject_rate is None else max_reject_rate
    if not 0 <= gate <= 1:
        raise UsageError(f"max_reject_rate == {gate}, must be in [0, 1]")
    with writing(config, db_path, f"upshot load {table}") as con:
        files = discover(paths, con)
        reports = []
        for i, path in enumerate(files):
            if on_file:
                on_file(i, len(files), path)
            reports.append(load_file(con, table, path, config))
    report = LoadReport(table, tuple(reports), gate)
    if report.over_gate:
        worst = max(report.over_gate, key=lambda f: f.reject_rate)
        raise DataQualityError(
            f"{len(report.over_gate)} file(s) over the reject gate of {gate:.2%}; worst: "
            f"{worst.source} with {worst.rows_quarantined} of {worst.rows_read} rows quarantined "
            f"({worst.reject_rate:.2%}); good rows were loaded",
            report=report,
        )
    return report
