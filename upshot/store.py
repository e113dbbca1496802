"""The DuckDB warehouse: connections, migrations, the writer lock and the run registry.

DuckDB lets one process write *or* several read a file, never both at once. So a writer
holds upshot's application lock (a `<db>.lock` file) for its whole command but opens the
database only for each transaction; readers never touch the application lock and retry
DuckDB's own file lock for up to the timeout while a transaction commits.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from upshot.errors import DatabaseBusyError, SchemaVersionError, UpshotError, UsageError
from upshot.sql import literal

if TYPE_CHECKING:
    import duckdb

    from upshot.config import Config, Warehouse

_RETRY_SECONDS = 0.05


def migrations() -> list[tuple[int, str, str]]:
    """The numbered migration files shipped with the package, in order."""
    folder = resources.files("upshot.sql").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql"):
            found.append((int(name.split("_", 1)[0]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


SCHEMA_VERSION = max(number for number, _, _ in migrations())


def _open(path: str, read_only: bool, timeout: float) -> duckdb.DuckDBPyConnection:
    import duckdb

    deadline = time.monotonic() + timeout
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise UpshotError(f"{path}: {str(exc).splitlines()[0]}") from None
            if time.monotonic() >= deadline:
                raise DatabaseBusyError(
                    f"{path} is busy: another process holds DuckDB's file lock ({_holder(exc)})"
                ) from None
            time.sleep(_RETRY_SECONDS)


def _holder(exc: Exception) -> str:
    text = str(exc)
    marker = "PID "
    return "PID " + text.split(marker, 1)[1].split(")")[0] if marker in text else "unknown"


def connect(
    path: str, *, read_only: bool, settings: Warehouse | None = None, schema: bool = True
) -> duckdb.DuckDBPyConnection:
    """A connection with `TimeZone='UTC'`, the memory limit and the schema up to date;
    `schema=False` (a scratch in-memory database that only reads files) skips the
    migrations."""
    from upshot.config import Warehouse

    settings = settings or Warehouse()
    if path != ":memory:":
        _refuse_other_files(path)
        if read_only and not Path(path).exists():
            raise UsageError(f"{path}: no warehouse here yet; run `upshot load` first")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = _open(path, read_only, settings.lock_timeout)
    con.execute("SET TimeZone = 'UTC'")
    # DuckDB draws its bar on stdout even into a pipe, which would corrupt `--json`
    con.execute("SET enable_progress_bar = false")
    con.execute(f"SET memory_limit = '{_size(settings.memory_limit)}'")
    if settings.threads > 0:
        con.execute(f"SET threads = {int(settings.threads)}")
    if not read_only:
        # spill to disk beside the work rather than fail when memory_limit is reached
        con.execute(f"SET temp_directory = {literal(settings.temp_directory)}")
        if schema:
            migrate(con)
    else:
        _check_version(con, path)
    return con


_DATA_SUFFIXES = (".parquet", ".csv", ".tsv", ".json", ".ndjson", ".jsonl", ".gz")


def _refuse_other_files(path: str) -> None:
    """A warehouse path must hold a DuckDB database (or nothing yet). DuckDB would open a
    Parquet file as a throw-away in-memory database, so a load there would vanish."""
    target = Path(path)
    kind = None
    if target.is_file() and target.stat().st_size > 0:
        with target.open("rb") as handle:
            head = handle.read(16)
        if head[8:12] != b"DUCK":  # DuckDB's magic bytes
            kind = "Parquet" if head[:4] == b"PAR1" else "not DuckDB"
            if head.startswith(b"SQLite format 3"):
                kind = "SQLite"
    elif not target.exists() and target.name.lower().endswith(_DATA_SUFFIXES):
        kind = f"a {target.suffix} name"
    if kind is not None:
        raise UsageError(
            f"{path} is not a DuckDB database ({kind}); point --db, UPSHOT_DB or "
            "[warehouse] path at the warehouse file, e.g. upshot.duckdb"
        )


def _size(text: str) -> str:
    cleaned = text.strip().upper().replace(" ", "")
    if not cleaned[:-2].replace(".", "").isdigit() or cleaned[-2:] not in ("KB", "MB", "GB", "TB"):
        raise UsageError(f"warehouse.memory_limit == {text!r}, must look like 4GB or 512MB")
    return cleaned


def _applied(con: duckdb.DuckDBPyConnection) -> set[int]:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = '_meta'"
    ).fetchone()
    if not exists or not exists[0]:
        return set()
    return {int(r[0]) for r in con.execute("SELECT schema_version FROM _meta").fetchall()}


def _check_version(con: duckdb.DuckDBPyConnection, path: str) -> set[int]:
    applied = _applied(con)
    if applied and max(applied) > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path} has schema version {max(applied)}, newer than this upshot's "
            f"{SCHEMA_VERSION}; upgrade upshot to use it"
        )
    return applied


def migrate(con: duckdb.DuckDBPyConnection, path: str = "warehouse") -> int:
    """Apply every migration this database lacks, each in its own transaction.

    Missing numbers are applied even below the highest one recorded, so migrations that
    land out of order on different branches all reach every database.
    """
    con.execute("CREATE TABLE IF NOT EXISTS _meta (schema_version INTEGER, applied_at TIMESTAMPTZ)")
    applied = _check_version(con, path)
    for number, _name, text in migrations():
        if number in applied:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(text)
            con.execute("INSERT INTO _meta VALUES (?, now())", [number])
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):  # an interrupt may have ended it already
                con.execute("ROLLBACK")
            raise
    return SCHEMA_VERSION


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT, or ROLLBACK on any error (a killed process rolls back on reopen)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        # an interrupt inside DuckDB may have ended the transaction already; the original
        # error is the one to report, not "no transaction is active"
        with contextlib.suppress(Exception):
            con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


@contextlib.contextmanager
def file_lock(lock_path: Path, timeout: float, what: str, holder: str) -> Iterator[None]:
    """An exclusive flock on `lock_path`, which names its `holder` while held.

    After `timeout` seconds of waiting: DatabaseBusyError naming `what` and the holder.
    The kernel releases the lock when the process dies, so a killed holder never wedges it.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    current = lock_path.read_text(encoding="utf-8", errors="replace").strip()
                    raise DatabaseBusyError(
                        f"{what} is busy: the lock is held by {current or 'another process'}"
                        f" (waited {timeout:g}s)"
                    ) from None
                time.sleep(_RETRY_SECONDS)
        os.ftruncate(fd, 0)
        os.write(fd, f"PID {os.getpid()} ({holder})".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextlib.contextmanager
def writer_lock(db_path: str, timeout: float, command: str = "upshot") -> Iterator[None]:
    """Hold upshot's application lock on `db_path`; busy after `timeout` seconds."""
    if db_path == ":memory:":
        yield
        return
    with file_lock(Path(f"{db_path}.lock"), timeout, db_path, command):
        yield


@contextlib.contextmanager
def writing(config: Config, db_path: str, command: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """The writer lock and a read-write connection, for commands that change the warehouse
    (in lake mode with the lake's tables attached: see `upshot.lake`)."""
    with writer_lock(db_path, config.warehouse.lock_timeout, command):
        con = connect(db_path, read_only=False, settings=config.warehouse)
        try:
            _attach_lake(con, config)
            yield con
        finally:
            con.close()


def _attach_lake(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    if config.lake.path:
        from upshot import lake

        lake.attach(con, config)


class Turns:
    """A writer's connections over a long command, taken in turns so readers get in.

    DuckDB locks the whole file while a read-write connection is open, so a load of many
    files holding one connection would keep `status` out until the end. `connection()`
    reuses the open connection while it is younger than `hold` seconds; `yield_turn()`
    (between two units of work, after a commit) closes an older one, and the next
    `connection()` pauses two reader retry intervals before reopening it.
    """

    def __init__(self, config: Config, db_path: str, hold: float) -> None:
        self._config, self._db_path, self._hold = config, db_path, hold
        self._con: duckdb.DuckDBPyConnection | None = None
        self._opened = 0.0
        self._yielded = False

    def connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            if self._yielded:
                time.sleep(2 * _RETRY_SECONDS)  # a reader retrying every 50 ms gets its turn
            self._con = connect(self._db_path, read_only=False, settings=self._config.warehouse)
            self._opened = time.monotonic()
        return self._con

    def yield_turn(self) -> None:
        if self._con is not None and time.monotonic() - self._opened >= self._hold:
            self.close()
            self._yielded = True

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


@contextlib.contextmanager
def writing_in_turns(
    config: Config, db_path: str, command: str, hold: float = 1.0
) -> Iterator[Turns]:
    """The writer lock for a whole command, the database opened in `Turns`."""
    with writer_lock(db_path, config.warehouse.lock_timeout, command):
        turns = Turns(config, db_path, hold)
        try:
            yield turns
        finally:
            turns.close()


@contextlib.contextmanager
def reading(config: Config, db_path: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection; never waits for the writer lock. In lake mode the contract
    tables come from the lake, so a warehouse not made yet is made (for the results)."""
    if config.lake.path and db_path != ":memory:" and not Path(db_path).exists():
        with writer_lock(db_path, config.warehouse.lock_timeout, "upshot --lake"):
            connect(db_path, read_only=False, settings=config.warehouse).close()
    con = connect(db_path, read_only=True, settings=config.warehouse)
    try:
        _attach_lake(con, config)
        yield con
    finally:
        con.close()


def tool_version() -> str:
    from upshot import __version__

    return __version__


def start_run(
    con: duckdb.DuckDBPyConnection,
    command: str,
    config: Config,
    *,
    inputs_fingerprint: str | None = None,
    seed: int | None = None,
) -> str:
    """Register a run and return its id."""
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    con.execute(
        "INSERT INTO runs VALUES (?, ?, now(), NULL, 'running', ?, ?, ?, ?, NULL)",
        [run_id, command, tool_version(), config.fingerprint(), inputs_fingerprint, seed],
    )
    return run_id


def finish_run(
    con: duckdb.DuckDBPyConnection, run_id: str, status: str, details: dict[str, Any] | None = None
) -> None:
    con.execute(
        "UPDATE runs SET finished_at = now(), status = ?, details = ? WHERE run_id = ?",
        [status, json.dumps(details or {}, default=str), run_id],
    )


def inputs_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """A hash of every load so far: estimates made from the same loads share it. In lake
    mode, of the lake's files instead (`_lake_files`, see upshot.lake)."""
    lake = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = '_lake_files'"
    ).fetchone()
    source = "_lake_files" if lake and lake[0] else "_loads"
    rows = con.execute(f"SELECT fingerprint FROM {source} ORDER BY fingerprint").fetchall()
    return hashlib.sha256("".join(r[0] for r in rows).encode()).hexdigest()
