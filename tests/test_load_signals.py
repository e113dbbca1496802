"""Exit codes and messages of a load under readers, Ctrl-C, unusable paths and a `--db`
that is not a warehouse (issue 15, item 14)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import run_cli, run_subprocess
from tests.test_load import checksum, sends_frame
from upshot.config import Config
from upshot.load import load


def test_a_reader_waits_only_for_a_files_commit_not_the_whole_load(tmp_path, monkeypatch):
    import upshot.load

    # files this small load in well under HOLD_SECONDS; with 0 every file takes a turn
    monkeypatch.setattr(upshot.load, "HOLD_SECONDS", 0.0)
    for i in range(3):
        sends_frame(50, seed=i).with_columns(
            send_id=sends_frame(50, seed=i)["send_id"] + f"-{i}"
        ).write_parquet(tmp_path / f"p{i}.parquet")
    (tmp_path / "upshot.toml").write_text("[warehouse]\nlock_timeout = 2.0\n")
    db = tmp_path / "w.duckdb"
    readers = []

    def between_files(i: int, n: int, path: str) -> None:
        if i > 0:  # a reader arriving while the load is under way, between two files
            readers.append(run_subprocess("--db", str(db), "status", "--json", cwd=tmp_path))

    load(str(db), "sends", [str(tmp_path / "*.parquet")], config=Config(), on_file=between_files)
    assert [r.code for r in readers] == [0, 0], [r.err for r in readers]
    assert checksum(db, "sends")[0] == 150


def _rows(db: Path) -> int:
    """Rows in sends; 0 when the interrupt came before the warehouse was set up."""
    if not db.exists():
        return 0
    with duckdb.connect(str(db), read_only=True) as con:
        found = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'sends'"
        ).fetchone()
    return checksum(db, "sends")[0] if found and found[0] else 0


@pytest.mark.slow
def test_sigint_at_any_point_of_a_load_is_exit_130_naming_the_file(tmp_path):
    big = tmp_path / "big.csv"
    with duckdb.connect() as con:
        con.execute(
            "COPY (SELECT 'b' || i AS send_id, 'u' || (i % 1000) AS user_id, 'c' AS message_class, "
            "'push' AS channel, "
            "TIMESTAMPTZ '2026-11-16 00:00:00+00' + to_seconds(i) AS decided_at, "
            "i % 2 = 0 AS treated, 0.5 AS propensity, false AS randomized FROM range(600000) t(i)) "
            f"TO '{big}' (HEADER)"
        )
    codes = []
    for delay in (0.0, 0.1, 0.3, 0.6, 0.9, 1.4):
        db = tmp_path / f"w{delay}.duckdb"
        proc = subprocess.Popen(
            [sys.executable, "-m", "upshot", "--db", str(db), "load", "sends", str(big)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lock = Path(f"{db}.lock")
        deadline = time.monotonic() + 60
        while not lock.exists() and time.monotonic() < deadline:  # the load has begun
            time.sleep(0.01)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        codes.append(proc.returncode)
        if proc.returncode == 0:  # the signal came after the load finished
            continue
        assert proc.returncode == 130, err
        last = err.strip().splitlines()[-1]
        assert last.startswith("Error: interrupted"), err
        assert "Query interrupted" not in err
        if "while loading" in last:
            assert str(big) in last
        assert _rows(db) in (0, 600_000)  # the file's transaction is all or nothing
    assert 130 in codes


def test_a_path_that_cannot_be_used_names_it_and_says_what_to_do(tmp_path):
    result = run_cli("init", str(tmp_path / "no-such-folder" / "upshot.toml"))
    assert result.code == 2
    last = result.err.strip().splitlines()[-1]
    assert last.startswith(f"Error: {tmp_path / 'no-such-folder' / 'upshot.toml'}: ")
    assert "FileNotFoundError" not in last
    assert "check" in last


@pytest.mark.parametrize(("name", "kind"), [("x.parquet", "Parquet"), ("t.txt", "not DuckDB")])
def test_a_db_that_is_not_a_duckdb_file_says_so(tmp_path, name, kind):
    path = tmp_path / name
    if name.endswith(".parquet"):
        sends_frame(3).write_parquet(path)
    else:
        path.write_text("hello")
    before = path.read_bytes()
    sends_frame(5).write_parquet(tmp_path / "a.parquet")
    for args in (("status",), ("load", "sends", str(tmp_path / "a.parquet"))):
        result = run_cli(*args, env={"UPSHOT_DB": str(path)})
        assert result.code == 2, (args, result.err)
        assert f"{path} is not a DuckDB database" in result.err
        if kind == "Parquet":
            assert "Parquet" in result.err
    assert path.read_bytes() == before


def test_a_new_db_path_named_like_a_data_file_is_refused(tmp_path):
    sends_frame(5).write_parquet(tmp_path / "a.parquet")
    target = tmp_path / "new.parquet"
    result = run_cli("--db", str(target), "load", "sends", str(tmp_path / "a.parquet"))
    assert result.code == 2
    assert "not a DuckDB database" in result.err
    assert not target.exists()
