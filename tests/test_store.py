"""The warehouse: migrations, schema versions, the writer lock, kill-safety."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import run_cli, run_subprocess
from tests.test_load import checksum, sends_frame
from upshot.config import Config
from upshot.errors import EXIT_BUSY, SchemaVersionError
from upshot.load import load
from upshot.store import SCHEMA_VERSION, connect, migrate


def test_migrations_are_idempotent_and_recorded(tmp_path):
    db = str(tmp_path / "w.duckdb")
    con = connect(db, read_only=False)
    assert migrate(con) == SCHEMA_VERSION
    assert migrate(con) == SCHEMA_VERSION
    versions = [r[0] for r in con.execute("SELECT schema_version FROM _meta ORDER BY 1").fetchall()]
    assert versions == sorted(set(versions))
    assert con.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)
    con.close()


def test_a_newer_schema_is_refused(tmp_path):
    db = str(tmp_path / "w.duckdb")
    connect(db, read_only=False).close()
    with duckdb.connect(db) as con:
        con.execute("INSERT INTO _meta VALUES (?, now())", [SCHEMA_VERSION + 1])
    with pytest.raises(SchemaVersionError, match="newer than this upshot's"):
        connect(db, read_only=True)
    result = run_cli("--db", db, "status")
    assert result.code == 1
    assert "Error:" in result.err
    assert "upgrade upshot" in result.err


def test_status_on_a_missing_warehouse_is_a_usage_error(tmp_path):
    result = run_cli("--db", str(tmp_path / "nope.duckdb"), "status")
    assert result.code == 2
    assert "no warehouse here yet" in result.err


HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from upshot.store import writer_lock
    with writer_lock(sys.argv[1], 5, "test holder"):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def test_a_second_writer_gets_the_busy_code_and_readers_still_work(tmp_path):
    db = tmp_path / "w.duckdb"
    sends_frame(10).write_parquet(tmp_path / "a.parquet")
    sends_frame(20).write_parquet(tmp_path / "b.parquet")
    load(str(db), "sends", [str(tmp_path / "a.parquet")], config=Config())
    (tmp_path / "upshot.toml").write_text("[warehouse]\nlock_timeout = 1.0\n")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db), "20"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        busy = run_subprocess(
            "--db", str(db), "load", "sends", str(tmp_path / "b.parquet"), cwd=tmp_path
        )
        waited = time.monotonic() - started
        assert busy.code == EXIT_BUSY
        assert f"PID {holder.pid} (test holder)" in busy.err
        # it gave up after the configured timeout, not after the holder finished
        assert waited < 15
        reader = run_subprocess("--db", str(db), "status", "--json", cwd=tmp_path)
        assert reader.code == 0
        assert json.loads(reader.out)["tables"][0]["rows"] == 10
    finally:
        holder.kill()
        holder.wait()
    assert checksum(db, "sends")[0] == 10


LOADER = textwrap.dedent(
    """
    import sys
    from upshot.config import Config
    from upshot.load import load
    print("start", flush=True)
    load(sys.argv[1], "sends", [sys.argv[2]], config=Config())
    print("done", flush=True)
    """
)


def test_a_load_killed_mid_file_leaves_the_warehouse_as_before(tmp_path):
    base = tmp_path / "base.duckdb"
    sends_frame(100).write_parquet(tmp_path / "small.parquet")
    load(str(base), "sends", [str(tmp_path / "small.parquet")], config=Config())
    big = tmp_path / "big.csv"
    with duckdb.connect() as con:
        con.execute(
            "COPY (SELECT 'b' || i AS send_id, 'u' || (i % 1000) AS user_id, 'c' AS message_class, "
            "'push' AS channel, "
            "TIMESTAMPTZ '2026-11-16 00:00:00+00' + to_seconds(i) AS decided_at, "
            "i % 2 = 0 AS treated, 0.5 AS propensity, false AS randomized FROM range(600000) t(i)) "
            f"TO '{big}' (HEADER)"
        )
    before = {t: checksum(base, t) for t in ("sends", "quarantine", "_loads")}
    killed_mid_file = 0
    for delay in (0.2, 0.6, 1.2):
        db = tmp_path / f"w{delay}.duckdb"
        shutil.copy(base, db)
        proc = subprocess.Popen(
            [sys.executable, "-c", LOADER, str(db), str(big)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "start"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        after = {t: checksum(db, t) for t in before}
        if after == before:
            killed_mid_file += 1
        else:  # the kill came after the commit: then the whole file is there
            assert after["sends"][0] == 100 + 600_000
            assert after["_loads"][0] == 2
    assert killed_mid_file >= 1, "no kill landed mid-file; make the file bigger"
    # the lock died with the process, and a rerun completes the file
    load(str(db), "sends", [str(big)], config=Config())
    assert checksum(db, "sends")[0] == 100 + 600_000


def test_interrupt_exits_130_and_loses_nothing_committed(tmp_path):
    db = tmp_path / "w.duckdb"
    sends_frame(50).write_parquet(tmp_path / "a.parquet")
    load(str(db), "sends", [str(tmp_path / "a.parquet")], config=Config())
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db), "30"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        holder.stdout.readline()
        waiting = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "upshot",
                "--db",
                str(db),
                "load",
                "sends",
                str(tmp_path / "a.parquet"),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)  # it is waiting for the lock
        waiting.send_signal(signal.SIGINT)
        _, err = waiting.communicate(timeout=30)
        assert waiting.returncode == 130
        assert "Error: interrupted" in err
    finally:
        holder.kill()
        holder.wait()
    assert checksum(db, "sends")[0] == 50


def test_writer_lock_file_names_the_holder(tmp_path: Path):
    from upshot.store import writer_lock

    db = str(tmp_path / "w.duckdb")
    with writer_lock(db, 1, "upshot load sends"):
        assert (tmp_path / "w.duckdb.lock").read_text() == f"PID {os.getpid()} (upshot load sends)"


@pytest.mark.parametrize("read_only", [False, True])
def test_work_past_the_memory_limit_spills_to_disk(tmp_path, read_only):
    from upshot.config import Warehouse

    db = str(tmp_path / "w.duckdb")
    spill = tmp_path / "spill"
    settings = Warehouse(memory_limit="64MB", temp_directory=str(spill), threads=1)
    with connect(db, read_only=False, settings=settings) as con:
        # ≈ 190 MB of strings: three times the limit
        con.execute(
            "CREATE TABLE t AS SELECT md5(i::VARCHAR) || md5((i + 1)::VARCHAR) AS s "
            "FROM range(2500000) r(i)"
        )
    con = connect(db, read_only=read_only, settings=settings)
    try:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchone()
        assert limit == ("61.0 MiB",)  # DuckDB reads "64MB" as 64·10⁶ bytes, shows MiB
        # a sorted copy cannot fit in 64 MB: it must go to the temp directory, not fail
        con.execute("CREATE TEMP TABLE sorted AS SELECT s FROM t ORDER BY s DESC")
        files = con.execute("SELECT path, size FROM duckdb_temporary_files()").fetchall()
        assert sum(size for _, size in files) > 64 * 10**6
        # writers spill where the config says; readers beside the database (`<db>.tmp`)
        where = spill if not read_only else Path(db + ".tmp")
        assert all(Path(path).parent == where for path, _ in files)
        row = con.execute("SELECT count(*), min(s) = (SELECT min(s) FROM t) FROM sorted").fetchone()
        assert row == (2500000, True)
    finally:
        con.close()
