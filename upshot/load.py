"""Reading, validating, quarantining and appending logs, one file at a time.

Each file is read by DuckDB through a view whose rows carry their first validation
failure, if any (`_fail`), and `_ok`, a plain filter true exactly when there is none.
A CSV or Parquet file is read once: in one transaction, the insert reads it and appends
the good rows not seen before, counting the rows read and the naive timestamps as it
goes, and the rows just appended prove that no key repeats (`load_counted`); a file in
which one does is rolled back and loaded the surveyed way. Otherwise (JSON, users
`--replace`, a file with a repeated key) a light pass reads only the key and timestamp
columns, unvalidated: it counts the rows and the naive timestamps and proves by hashes
that no key repeats (`load_append.survey`), then the insert reads the whole file once,
windowed only if a key repeats. Either way, only if some row did not load are the failing
rows looked for, in a second validating pass that stores them alone (`_bad`) for
`quarantine`; the file's fingerprint goes to `_loads`. A file loads entirely (minus
quarantined rows) or not at all, even if the process is killed mid-way (DuckDB rolls the
transaction back).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from upshot import contract, headers, partitions
from upshot.contract import Column, TableSpec
from upshot.errors import (
    DataQualityError,
    InputError,
    InterruptError,
    LoadIncompleteError,
    UsageError,
)
from upshot.interrupts import interruptible, is_interrupt
from upshot.load_append import Bad, Survey
from upshot.load_append import insert as _insert
from upshot.load_append import naive_exactly as _naive_exactly
from upshot.load_append import replace_users as _replace
from upshot.load_append import store_bad as _store_bad
from upshot.load_append import survey as _survey
from upshot.load_checks import Checked, add_folders, extras, mapped, stage, with_folders
from upshot.load_counted import NeedsSurveyError
from upshot.load_counted import insert as _insert_counted
from upshot.load_report import FileReport, LoadReport
from upshot.readers import (
    ambiguous_dates,
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
from upshot.sql import ident, query
from upshot.store import transaction, writing_in_turns

if TYPE_CHECKING:
    import duckdb

    from upshot.config import Config

# a load keeps the warehouse open across files for this long, then lets readers in
HOLD_SECONDS = 1.0
FOLDER = headers.FOLDER


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
    import duckdb

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
    with _reading(path, fmt):
        open_source(con, path, fmt, spec)
        add_folders(con, folders)
        # the columns, described once: every DESCRIBE of a CSV view sniffs the file again
        described = describe(con, "_src")
        if fmt == "csv" and (twice := duplicate_header(con, path, described)):
            raise InputError(
                f"{path}: column {twice!r} appears twice in the header; nothing of this file "
                "was loaded"
            )
        if fmt == "csv" and spec.open_columns and (day := ambiguous_dates(con, path, described)):
            raise InputError(
                f"{path}: column {day!r} holds dates such as 05/06/2026 with no day above 12, "
                "so day/month and month/day cannot be told apart; write them as ISO dates "
                "(2026-06-05); nothing of this file was loaded"
            )
        data = "_src"
        if fmt == "csv":
            data = with_folders("_src_data", folders)
        mapping, ignored = mapped(con, path, spec, folders, renames, config, described)
        checked = [k for k in folders if mapping[k][0] != FOLDER + k]
        cols = spec.columns + extras(con, spec, mapping)
        views = stage(con, spec, cols, mapping, config, checked, data, described)
        # a CSV or Parquet file is read once, by an insert that counts, unless a key repeats
        one_read = fmt in ("csv", "parquet") and not replace
        survey = None if one_read else _surveyed(con, spec, mapping, views, fmt)
    load_id = f"{table}-{digest[:12]}-{uuid.uuid4().hex[:6]}"
    mode = "replace" if replace else "append"
    while True:
        try:
            with transaction(con):
                for col in cols[len(spec.columns) :]:
                    con.execute(
                        f"ALTER TABLE {ident(spec.name)} ADD COLUMN IF NOT EXISTS "
                        f"{ident(col.name)} {col.type}"
                    )
                try:
                    got = _append(con, spec, cols, mapping, views, load_id, survey, replace, fmt)
                except (duckdb.IOException, duckdb.InvalidInputException) as exc:
                    raise _unreadable(path, fmt, exc) from None
                _journal(con, got, load_id, digest, path, table, mode, stat)
            break
        except NeedsSurveyError:  # a key repeats in the file: load it again, surveyed
            with _reading(path, fmt):
                survey = _surveyed(con, spec, mapping, views, fmt)
    bad = got.bad
    reasons = dict(con.execute(query("load", "stage-reasons")).fetchall()) if bad.rows else {}
    if got.rejects:
        reasons["malformed_row"] = reasons.get("malformed_row", 0) + len(got.rejects)
    _drop(con)
    return FileReport(
        path,
        table,
        "loaded",
        got.read,
        got.accepted,
        got.duplicates,
        got.quarantined,
        reasons,
        ignored,
        digest,
        rows_replaced=got.replaced,
        naive_timestamps=got.naive,
    )


@dataclass(frozen=True, slots=True)
class _Appended:
    """What one file's transaction did: rows read (rejected records included), appended
    (replaced users included), replaced, the failing rows stored in `_bad`, the naive
    timestamps among the good rows, and the records the CSV reader rejected."""

    read: int
    accepted: int
    replaced: int
    bad: Bad
    naive: int
    rejects: list[tuple[int, str]]

    @property
    def quarantined(self) -> int:
        return self.bad.rows + len(self.rejects)

    @property
    def duplicates(self) -> int:
        return self.read - self.quarantined - self.accepted


def _surveyed(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    mapping: dict[str, tuple[str, str]],
    views: Checked,
    fmt: str,
) -> tuple[Survey, list[tuple[int, str]]]:
    """The light pass, and the CSV records it could not split: with the rows it read,
    every record of the file."""
    survey = _survey(con, spec, mapping, views)
    return survey, csv_rejects(con, fmt)


def _append(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    cols: tuple[Column, ...],
    mapping: dict[str, tuple[str, str]],
    views: Checked,
    load_id: str,
    surveyed: tuple[Survey, list[tuple[int, str]]] | None,
    replace: bool,
    fmt: str,
) -> _Appended:
    """Append the file's good new rows and store its failing ones, counting, inside its
    transaction: in one read of the file (`surveyed` None; `NeedsSurveyError` if a key
    repeats), or after the light pass."""
    if surveyed is None:
        counted = _insert_counted(con, spec, cols, load_id, views, mapping)
        rejects = csv_rejects(con, fmt)
        clean = counted.accepted == counted.read
        bad = Bad(0, 0) if clean else _store_bad(con, spec, mapping, views)
        read = counted.read + len(rejects)
        return _Appended(read, counted.accepted, 0, bad, counted.naive, rejects)
    survey, rejects = surveyed
    read = survey.read + len(rejects)
    replaced = _replace(con, spec, cols, load_id) if replace else 0
    accepted = _insert(con, spec, cols, load_id, views, survey) + replaced
    # the insert read every column: it also rejects a record whose unread fields were not
    # valid UTF-8, which the light pass counted as a row
    more = csv_rejects(con, fmt)
    # every row accepted: none failed (nor repeated), and none is read again
    clean = accepted == read - len(more)
    bad = Bad(0, 0) if clean else _store_bad(con, spec, mapping, views)
    naive = survey.naive - bad.naive
    if len(more) > len(rejects):  # the light pass counted their timestamps too
        naive = _naive_exactly(con, spec, mapping, views)
    return _Appended(read, accepted, replaced, bad, naive, more)


def _journal(
    con: duckdb.DuckDBPyConnection,
    got: _Appended,
    load_id: str,
    digest: str,
    path: str,
    table: str,
    mode: str,
    stat: tuple[str, int, int] | None,
) -> None:
    """Quarantine the failing rows and the rejected records, and journal the file."""
    if got.bad.rows:
        fix_csv_rows(con, got.rejects)
        con.execute(query("load", "quarantine-staged"), [load_id, path, table])
    for line, raw in got.rejects:
        con.execute(
            "INSERT INTO quarantine VALUES (?, ?, ?, ?, NULL, 'malformed_row', ?)",
            [load_id, path, table, line, raw],
        )
    counts = [got.read, got.accepted, got.duplicates, got.quarantined]
    stat3 = list(stat or (None, None, None))
    con.execute(query("load", "record-load"), [load_id, digest, path, table, *counts, *stat3])
    con.execute(query("load", "record-mode"), [mode, got.naive, load_id])


@contextlib.contextmanager
def _reading(path: str, fmt: str) -> Iterator[None]:
    """DuckDB could not read the file at all: name the file, load nothing."""
    try:
        yield
    except (InputError, InterruptError):
        raise
    except Exception as exc:
        raise _unreadable(path, fmt, exc) from None


def _unreadable(path: str, fmt: str, exc: Exception) -> Exception:
    """DuckDB could not read the file at all: name it (an interrupt stays one)."""
    if is_interrupt(exc):
        return exc
    return InputError(f"{path}: cannot read as {fmt}: {str(exc).splitlines()[0]}")


def _drop(con: duckdb.DuckDBPyConnection) -> None:
    """The temporary tables of one file's load (the views are replaced by the next), and
    the optimizer setting of its insert, should that have failed."""
    con.execute("DROP TABLE IF EXISTS _bad; DROP TABLE IF EXISTS _known")
    con.execute("RESET disabled_optimizers")


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
