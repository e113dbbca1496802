"""Reading, validating, quarantining and appending logs, one file at a time.

Each file is read by DuckDB through a view whose rows carry their first validation
failure, if any (`_checked`). One aggregate pass counts the rows, the failures, the
naive timestamps and whether a key repeats; only the failing rows are stored (`_bad`).
Then, in one transaction, the bad rows go to `quarantine`, the good rows not seen before
go straight from the file to the target table, and the file's fingerprint goes to
`_loads`: a file loads entirely (minus quarantined rows) or not at all, even if the
process is killed mid-way (DuckDB rolls the transaction back).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from upshot import contract, headers, partitions
from upshot.config import parse_size, parse_window
from upshot.contract import Column, TableSpec
from upshot.errors import (
    DataQualityError,
    InputError,
    InterruptError,
    LoadIncompleteError,
    UsageError,
)
from upshot.interrupts import interruptible, is_interrupt
from upshot.readers import (
    csv_rejects,
    describe,
    discover,
    duplicate_header,
    file_format,
    fingerprint,
    fix_csv_rows,
    local_stat,
    open_source,
)
from upshot.results import ResultsMixin
from upshot.sql import ident, literal, query
from upshot.store import transaction, writing_in_turns

if TYPE_CHECKING:
    import duckdb

    from upshot.config import Config

# a load keeps the warehouse open across files for this long, then lets readers in
HOLD_SECONDS = 1.0
FOLDER = headers.FOLDER


@dataclass(frozen=True, slots=True)
class FileReport:
    """What happened to one input file; counts are rows."""

    source: str
    table: str
    status: str  # loaded | already_loaded | failed
    rows_read: int = 0
    rows_accepted: int = 0
    duplicates_skipped: int = 0
    rows_quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    ignored_columns: tuple[str, ...] = ()
    fingerprint: str = ""
    error: str = ""  # why a failed file loaded nothing
    rows_replaced: int = 0  # users --replace: rows of users already there, overwritten
    naive_timestamps: int = 0  # timestamps without a zone, read in load.naive_timezone

    @property
    def reject_rate(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0


@dataclass(frozen=True, slots=True)
class LoadReport(ResultsMixin):
    """Every file of one `upshot load`, plus the reject gate that applied to them."""

    table: str
    files: tuple[FileReport, ...]
    max_reject_rate: float
    pruned: int = 0  # files left out by --since / --until / --partition, never opened

    def to_dicts(self) -> list[dict[str, Any]]:
        failed = bool(self.failed)  # the error column shows only when there is one
        return [
            {
                "source": f.source,
                "status": f.status,
                "rows_read": f.rows_read,
                "rows_accepted": f.rows_accepted,
                "duplicates_skipped": f.duplicates_skipped,
                "rows_quarantined": f.rows_quarantined,
                "rel_rejected": f.reject_rate,
                **({"error": f.error or None} if failed else {}),
            }
            for f in self.files
        ]

    @property
    def failed(self) -> tuple[FileReport, ...]:
        return tuple(f for f in self.files if f.status == "failed")

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
                {
                    **d,
                    "rows_replaced": f.rows_replaced,
                    "naive_timestamps": f.naive_timestamps,
                    "reasons": f.reasons,
                    "ignored_columns": list(f.ignored_columns),
                    "error": f.error or None,
                }
                for d, f in zip(self.to_dicts(), self.files, strict=True)
            ],
            "totals": {
                "files": len(self.files),
                "files_pruned": self.pruned,
                "files_failed": len(self.failed),
                "rows_accepted": sum(f.rows_accepted for f in self.files),
                "duplicates_skipped": sum(f.duplicates_skipped for f in self.files),
                "rows_quarantined": sum(f.rows_quarantined for f in self.files),
                "quarantined_by_reason": self.reasons,
            },
            "max_reject_rate": self.max_reject_rate,
            "gate_exceeded": [f.source for f in self.over_gate],
        }


def _columns(
    con: duckdb.DuckDBPyConnection,
    path: str,
    spec: TableSpec,
    folders: dict[str, str],
    renames: dict[str, str] | None = None,
    config: Config | None = None,
) -> tuple[dict[str, tuple[str, str]], tuple[str, ...]]:
    """contract name → (source column, source type); plus the source columns ignored.

    A contract column the file lacks is read from its partition folder, if it has one.
    """
    mapping = headers.renamed(path, describe(con, "_src"), renames or {})
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


def _add_folders(con: duckdb.DuckDBPyConnection, folders: dict[str, str]) -> None:
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


def _with_folders(relation: str, folders: dict[str, str]) -> str:
    """`relation` with the partition folder columns `_add_folders` gives `_src`."""
    if not folders:
        return relation
    consts = ", ".join(
        f"{'NULL' if partitions.is_null(v) else literal(v)}::VARCHAR AS {ident(FOLDER + k)}"
        for k, v in folders.items()
    )
    return f"(SELECT *, {consts} FROM {relation})"


def _mismatch(spec: TableSpec, checked: Sequence[str], tz: str) -> str:
    """CASE naming the first column whose value differs from its partition folder's."""
    branches = []
    for col in spec.columns:
        if col.name not in checked:
            continue
        folder = contract.typed(col, FOLDER + col.name, "VARCHAR", tz)
        raw = ident(col.name if col.type == "VARCHAR" else "_raw_" + col.name)
        branches.append(
            f"WHEN {ident(col.name)} IS DISTINCT FROM {folder} THEN {{'reason': "
            f"'partition_mismatch', 'column': {literal(col.name)}, "
            f"'raw': CAST({raw} AS VARCHAR)}}"
        )
    return f"CASE {' '.join(branches)} END"


def _extras(
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
    contract columns and `_fail`. `keys`: the key columns typed, as SQL over `source`,
    the file read as it is (without `_row`)."""

    rows: str
    data: str
    source: str
    keys: dict[str, str]


def _stage(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    columns: tuple[Column, ...],
    mapping: dict[str, tuple[str, str]],
    config: Config,
    checked: Sequence[str] = (),
    data: str = "_src",
) -> Checked:
    """The views over `_src` (and `data`, the same without `_row`) typed, with each row's
    first failure; `checked` columns must equal their partition folder's value."""
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
    source_columns = describe(con, "_src")
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
    # one instant for every pass over the file, so that they agree on "the future"
    clock_row = con.execute("SELECT CAST(now() AS VARCHAR)").fetchone()
    clock = f"CAST({literal(str(clock_row[0] if clock_row else ''))} AS TIMESTAMPTZ)"
    fail = contract.failure(
        TableSpec(spec.name, columns, spec.key), present, config.load.channels, time_range, clock
    )
    if checked:
        fail = f"coalesce({fail}, {_mismatch(spec, checked, tz)})"
    if oversize:
        fail = f"coalesce(_oversize, {fail})"
    if "_json_ok" in selects:
        fail = (
            "CASE WHEN NOT _json_ok THEN {'reason': 'malformed_json', 'column': NULL, "
            f"'raw': NULL}} ELSE {fail} END"
        )
    body = ", ".join(selects)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW _checked AS SELECT *, {fail} AS _fail "
        f"FROM (SELECT _row, {body} FROM _src)"
    )
    if data == "_src":
        return Checked("_checked", "_checked", "_src", keys)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW _checked_data AS SELECT *, {fail} AS _fail "
        f"FROM (SELECT {body} FROM {data})"
    )
    return Checked("_checked", "_checked_data", data, keys)


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


@dataclass(frozen=True, slots=True)
class Survey:
    """One aggregate pass over the checked file: rows, failing rows, naive timestamps,
    and whether a key repeats among the good rows."""

    read: int
    bad: int
    naive: int
    repeats: bool


def _survey(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    mapping: dict[str, tuple[str, str]],
    views: Checked,
) -> Survey:
    """Count what the load needs in one pass. Repeated keys are looked for by their hash:
    as many distinct hashes as keyed rows proves no key repeats; fewer (a repeat, or a
    collision) is settled by an exact count of distinct keys, a pass only such files pay."""
    keys = [ident(k) for k in spec.key]
    keyed = " AND ".join(f"{k} IS NOT NULL" for k in keys)
    good = f"_fail IS NULL AND {keyed}"
    row = con.execute(
        f"SELECT count(*), count(_fail), count(*) FILTER (WHERE {good}), "
        f"count(DISTINCT hash({', '.join(keys)})) FILTER (WHERE {good}), "
        f"{_naive_timestamps(spec, mapping)} FROM {views.data}"
    ).fetchall()  # not fetchone: the CSV reader writes its rejects table when drained
    read, bad, keyed_rows, hashes, naive = (int(x or 0) for x in row[0])
    repeats = False
    if hashes < keyed_rows:
        key_tuple = f"({', '.join(keys)})" if len(keys) > 1 else keys[0]
        exact = con.execute(
            f"SELECT count(*) - count(DISTINCT {key_tuple}) FROM {views.data} WHERE {good}"
        ).fetchone()
        repeats = bool(exact and exact[0])
    return Survey(read, bad, naive, repeats)


def _insert(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    columns: tuple[Column, ...],
    load_id: str,
    views: Checked,
    repeats: bool,
) -> int:
    """Append the good rows whose key is new (first occurrence in the file wins), read
    from the file itself: no copy of the good rows is staged.

    Dedupe is the costly part of a load, so each step runs only when it can matter: the
    window only when the file repeats a key, the anti-join only when the table has rows.
    """
    table = ident(spec.name)
    keys = [ident(k) for k in spec.key]
    keyed = " AND ".join(f"{k} IS NOT NULL" for k in keys)
    has_rows = con.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()
    rows = f"SELECT * FROM {views.data} WHERE _fail IS NULL"
    if repeats:
        rows = (
            f"SELECT * FROM {views.rows} WHERE _fail IS NULL QUALIFY NOT ({keyed}) OR "
            f"row_number() OVER (PARTITION BY {', '.join(keys)} ORDER BY _row) = 1"
        )
    where = ""
    if has_rows and has_rows[0]:
        same_key = " AND ".join(f"t.{k} = f.{k}" for k in keys)
        typed = ", ".join(f"{views.keys[k]} AS {ident(k)}" for k in spec.key)
        # The file's keys already in the table, by an inner join: DuckDB builds its hash
        # table on the smaller side (a day's file, not years of history) and prunes the
        # table's row groups by the file's key range, where an anti-join against the
        # table would hash all of it for every file. A bad row's key may be among them:
        # harmless, bad rows are not inserted anyway.
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _known AS SELECT DISTINCT "
            f"{', '.join(f't.{k}' for k in keys)} FROM {table} t "
            f"JOIN (SELECT {typed} FROM {views.source}) f ON {same_key}"
        )
        where = f" WHERE NOT EXISTS (SELECT 1 FROM _known t WHERE {same_key})"
    cols = ", ".join(ident(c.name) for c in columns)
    picked = ", ".join(f"f.{ident(c.name)}" for c in columns)
    sql = f"INSERT INTO {table} ({cols}, load_id) SELECT {picked}, $load_id FROM ({rows}) f{where}"
    row = con.execute(sql, {"load_id": load_id}).fetchone()
    return int(row[0]) if row else 0


_ZONED = r"[T ][0-9]{1,2}:[0-9]{2}.*([+-][0-9]{2}(:?[0-9]{2})?|Z|UTC)$"


def _naive_timestamps(spec: TableSpec, mapping: dict[str, tuple[str, str]]) -> str:
    """SQL counting the good values of the checked file's timestamp columns that carried
    no zone (read in `load.naive_timezone`), for the load journal and `upshot check`."""
    counts = []
    for col in spec.columns:
        if col.type != "TIMESTAMPTZ" or col.name not in mapping:
            continue
        upper = mapping[col.name][1].upper()
        if upper.startswith("TIMESTAMP WITH TIME ZONE") or upper == "TIMESTAMPTZ":
            continue
        raw = ident("_raw_" + col.name)
        naive = (
            f"{raw} IS NOT NULL"
            if upper.startswith(("TIMESTAMP", "DATE"))
            else f"NOT regexp_matches(trim(CAST({raw} AS VARCHAR)), {literal(_ZONED)})"
        )
        counts.append(f"count(*) FILTER (WHERE _fail IS NULL AND {naive})")
    return " + ".join(counts) if counts else "0"


def _replace(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, columns: tuple[Column, ...], load_id: str
) -> int:  # users snapshots are small: the row-numbered view serves
    """`load users --replace`: the file's values overwrite, for the user_ids already in the
    table, every column the file holds (first row of a repeated id wins, as on append);
    columns the file lacks keep their values. New user_ids are appended after this."""
    key = ident(spec.key[0])
    sets = [f"{ident(c.name)} = f.{ident(c.name)}" for c in columns if c.name != spec.key[0]]
    sets.append("load_id = $load_id")
    row = con.execute(
        f"UPDATE {ident(spec.name)} AS t SET {', '.join(sets)} FROM (SELECT * FROM _checked "
        f"WHERE _fail IS NULL AND {key} IS NOT NULL "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY _row) = 1) AS f "
        f"WHERE t.{key} = f.{key}",
        {"load_id": load_id},
    ).fetchone()
    return int(row[0]) if row else 0


def load_file(
    con: duckdb.DuckDBPyConnection,
    table: str,
    path: str,
    config: Config,
    seen_stats: set[tuple[str, int, int]],
    renames: dict[str, str] | None = None,
    replace: bool = False,
) -> FileReport:
    """Load one file into `table` in one transaction; see the module docstring.
    `seen_stats` holds the (path, size, mtime) of the files loaded into it before;
    `renames` maps file columns to contract columns; `replace` (users only) overwrites
    the users the file holds instead of skipping them."""
    spec = table_spec(table)
    stat = local_stat(path)
    if stat in seen_stats:  # a partition seen before is skipped without reading it again
        return FileReport(path, table, "already_loaded")
    folders = partitions.columns(path, {c.name for c in spec.columns})
    # the folders are part of the data: the same bytes under channel=push and channel=email
    # are two different files
    digest = partitions.keyed(fingerprint(path, con), folders)
    seen = con.execute(query("load", "fingerprint-seen"), [digest, table]).fetchone()
    if seen and seen[0]:
        return FileReport(path, table, "already_loaded", fingerprint=digest)
    fmt = file_format(path)
    try:
        open_source(con, path, fmt, spec)
        if fmt == "csv" and (twice := duplicate_header(con, path)):
            raise InputError(
                f"{path}: column {twice!r} appears twice in the header; nothing of this file "
                "was loaded"
            )
        _add_folders(con, folders)
        data = "_src"
        if fmt == "csv":
            data = _with_folders("_src_data", folders)
        mapping, ignored = _columns(con, path, spec, folders, renames, config)
        checked = [k for k in folders if mapping[k][0] != FOLDER + k]
        columns = spec.columns + _extras(con, spec, mapping)
        views = _stage(con, spec, columns, mapping, config, checked, data)
        survey = _survey(con, spec, mapping, views)
        if survey.bad:  # only the failing rows are stored
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE _bad AS SELECT _row, _fail FROM {views.rows} "
                "WHERE _fail IS NOT NULL"
            )
    except (InputError, InterruptError):
        raise
    except Exception as exc:  # DuckDB could not read it at all: name the file, load nothing
        if is_interrupt(exc):
            raise
        raise InputError(f"{path}: cannot read as {fmt}: {str(exc).splitlines()[0]}") from None
    rejects = csv_rejects(con, fmt)
    if survey.bad:
        fix_csv_rows(con, rejects)
    load_id = f"{table}-{digest[:12]}-{uuid.uuid4().hex[:6]}"
    with transaction(con):
        for col in columns[len(spec.columns) :]:
            con.execute(
                f"ALTER TABLE {ident(spec.name)} ADD COLUMN IF NOT EXISTS "
                f"{ident(col.name)} {col.type}"
            )
        if survey.bad:
            con.execute(query("load", "quarantine-staged"), [load_id, path, table])
        for line, raw in rejects:
            con.execute(
                "INSERT INTO quarantine VALUES (?, ?, ?, ?, NULL, 'malformed_row', ?)",
                [load_id, path, table, line, raw],
            )
        replaced = _replace(con, spec, columns, load_id) if replace else 0
        accepted = _insert(con, spec, columns, load_id, views, survey.repeats) + replaced
        read, bad = survey.read + len(rejects), survey.bad + len(rejects)
        duplicates = read - bad - accepted
        con.execute(
            query("load", "record-load"),
            [load_id, digest, path, table, read, accepted, duplicates, bad, *(stat or (None,) * 3)],
        )
        naive = survey.naive
        con.execute(
            query("load", "record-mode"), [("replace" if replace else "append"), naive, load_id]
        )
    reasons = dict(con.execute(query("load", "stage-reasons")).fetchall()) if survey.bad else {}
    if rejects:
        reasons["malformed_row"] = reasons.get("malformed_row", 0) + len(rejects)
    _drop(con)
    return FileReport(
        path,
        table,
        "loaded",
        read,
        accepted,
        duplicates,
        bad,
        reasons,
        ignored,
        digest,
        rows_replaced=replaced,
        naive_timestamps=naive,
    )


def _drop(con: duckdb.DuckDBPyConnection) -> None:
    """The temporary tables of one file's load (the views are replaced by the next)."""
    con.execute("DROP TABLE IF EXISTS _bad; DROP TABLE IF EXISTS _known")


def _load_or_fail(
    con: duckdb.DuckDBPyConnection,
    table: str,
    path: str,
    config: Config,
    seen_stats: set[tuple[str, int, int]],
    renames: dict[str, str],
    replace: bool,
) -> FileReport:
    """`load_file`, or a `failed` report naming why: each file is its own transaction, so
    one bad file must not stop the next."""
    import duckdb

    try:
        return load_file(con, table, path, config, seen_stats, renames, replace)
    except Exception as exc:
        if is_interrupt(exc) or not isinstance(exc, InputError | duckdb.Error | OSError):
            raise
        error = _reason(path, exc)
    _drop(con)
    return FileReport(path, table, "failed", error=error)


def _reason(path: str, exc: Exception) -> str:
    """One line saying why a file failed, naming it."""
    if isinstance(exc, InputError):
        return str(exc)
    if isinstance(exc, OSError):
        return (
            f"{path}: cannot read it ({exc.strerror or exc}); check that it exists and is readable"
        )
    # e.g. a covariate whose type conflicts with the warehouse's
    return f"{path}: {str(exc).splitlines()[0]}"


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
    pruning: partitions.Pruning | None = None,
    columns: dict[str, str] | None = None,
    replace: bool = False,
) -> LoadReport:
    """Load every file named by `paths` into `table`, less those `pruning` leaves out by
    their partition folders; raise DataQualityError past the gate. `columns` maps contract
    columns to the files' (`--map`, over `[load.columns.<table>]`); `replace` (users only)
    makes the files the truth for the user_ids they hold.

    The gate is checked after every file has loaded, so good rows are never lost; the
    error carries the report (`exc.report`) for the caller to print.
    """
    spec = table_spec(table)
    if replace and not spec.open_columns:
        raise UsageError(f"--replace is for users snapshots, not {table}: {table} only appends")
    renames = headers.column_map(table, config, columns)
    gate = config.load.max_reject_rate if max_reject_rate is None else max_reject_rate
    if not 0 <= gate <= 1:
        raise UsageError(f"max_reject_rate == {gate}, must be in [0, 1]")
    # readers wait for one file's commit at most, not for the whole load (see Turns)
    with writing_in_turns(config, db_path, f"upshot load {table}", HOLD_SECONDS) as turns:
        con = turns.connection()
        files, pruned = (pruning or partitions.Pruning()).select(discover(paths, con))
        rows = con.execute(query("load", "seen-stats"), [table]).fetchall()
        seen_stats = {(str(p), int(size), int(mtime)) for p, size, mtime in rows}
        reports = []
        for i, path in enumerate(files):
            with interruptible(
                f"interrupted while loading {path}; each file loads whole or not at all, the "
                "files before it are committed, and the same command continues where it stopped"
            ):
                turns.yield_turn()
                if on_file:
                    on_file(i, len(files), path)
                con = turns.connection()
                reports.append(
                    _load_or_fail(con, table, path, config, seen_stats, renames, replace)
                )
    report = LoadReport(table, tuple(reports), gate, pruned)
    if report.failed:
        first = report.failed[0]
        others = len(report.files) - len(report.failed)
        raise LoadIncompleteError(
            (
                first.error
                if len(report.failed) == 1
                else f"{len(report.failed)} files failed, the first: {first.error}"
            )
            # a batch says what else happened; a single file's error is the whole story
            + (f"; {others} other file(s) were processed" if len(report.files) > 1 else ""),
            report=report,
        )
    if report.over_gate:
        worst = max(report.over_gate, key=lambda f: f.reject_rate)
        raise DataQualityError(
            f"{len(report.over_gate)} file(s) over the reject gate of {gate:.2%}; worst: "
            f"{worst.source} with {worst.rows_quarantined} of {worst.rows_read} rows quarantined "
            f"({worst.reject_rate:.2%}); good rows were loaded",
            report=report,
        )
    return report
