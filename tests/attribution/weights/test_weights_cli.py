"""`upshot weights ...`: exit codes, one JSON document per --json, and a real export process
killed at random points."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from tests.attribution.weights.test_weights_data import (
    CREATED,
    estimate_rows,
    insert_estimates,
    truth_rows,
    world_warehouse,
)
from tests.conftest import run_cli
from upshot.attribution.weights.read import read, schema, verify

ROOT = Path(__file__).resolve().parents[3]
COMMANDS = ("export", "show", "diff", "validate", "evaluate", "schema")


def _json(result) -> dict:
    assert result.out.count("\n") == 1 or result.out.strip().startswith("{"), result.out
    return json.loads(result.out)


@pytest.fixture
def db(tmp_path) -> Path:
    path = tmp_path / "upshot.duckdb"
    insert_estimates(path, estimate_rows(), "run-1")
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("world")
    world = world_warehouse(folder / "upshot.duckdb")
    insert_estimates(folder / "upshot.duckdb", truth_rows(world), "run-A")
    # an older run estimated on the first of the two weeks: W44 is left to evaluate on
    older = truth_rows(world, created_at=CREATED - timedelta(days=1))
    insert_estimates(
        folder / "upshot.duckdb", [{**r, "week": "2026-W43"} for r in older], "run-W43"
    )
    return folder


def cli(folder: Path, *args: str):
    return run_cli("--db", str(folder / "upshot.duckdb"), *args, cwd=folder)


def test_every_command_has_help():
    top = run_cli("weights", "--help")
    assert top.code == 0
    for command in COMMANDS:
        assert command in top.out
        result = run_cli("weights", command, "--help")
        assert result.code == 0, command
        assert len(result.out) > 200, command


def test_export_json_is_one_document_and_publishes(db, tmp_path):
    result = cli(tmp_path, "weights", "export", "--no-evaluate", "--json")
    assert result.code == 0, result.err
    doc = _json(result)
    assert doc["published"] is True
    assert doc["changed"] is True
    assert doc["uplift_run_id"] == "run-1"
    assert doc["breaker"]["tripped"] is False
    assert doc["evaluation"] is None
    assert {c["message_class"] for c in doc["classes"]} == {"a_push", "b_push", "c_push", "d_email"}
    assert read(tmp_path / "weights")["weights_version"] == doc["weights_version"]
    assert "published" in result.err
    again = _json(cli(tmp_path, "weights", "export", "--no-evaluate", "--json"))
    assert again["changed"] is False


def test_check_writes_nothing(db, tmp_path):
    result = cli(tmp_path, "weights", "export", "--check", "--no-evaluate", "--json")
    assert result.code == 0, result.err
    assert _json(result)["published"] is False
    assert not (tmp_path / "weights").exists()


def test_breaker_exit_codes(db, tmp_path):
    assert cli(tmp_path, "weights", "export", "--no-evaluate").code == 0
    insert_estimates(db, estimate_rows(scale=3.0, created_at=CREATED + timedelta(days=7)), "r2")
    check = cli(tmp_path, "weights", "export", "--check", "--no-evaluate", "--json")
    assert check.code == 5
    assert _json(check)["breaker"]["tripped"] is True
    assert "Error: circuit breaker would refuse" in check.err
    refused = cli(tmp_path, "weights", "export", "--no-evaluate", "--json")
    assert refused.code == 5
    assert _json(refused)["refused"] is True
    assert "--force" in refused.err
    forced = cli(tmp_path, "weights", "export", "--no-evaluate", "--force", "--json")
    assert forced.code == 0, forced.err
    body = _json(forced)
    assert body["forced"] is True
    assert read(tmp_path / "weights")["weights_version"] == body["weights_version"]
    # diff defaults to the version before the latest
    diff = cli(tmp_path, "weights", "diff", "--json")
    assert diff.code == 0
    d = _json(diff)
    assert d["to"] == body["weights_version"]
    assert d["breaker"]["tripped"] is True
    assert {r["message_class"] for r in d["diff"]} == {"a_push", "b_push", "c_push", "d_email"}


def test_show_validate_and_tampering(db, tmp_path):
    version = _json(cli(tmp_path, "weights", "export", "--no-evaluate", "--json"))[
        "weights_version"
    ]
    path = tmp_path / "weights" / f"{version}.json"
    shown = cli(tmp_path, "weights", "show", "--json")
    assert shown.code == 0
    assert _json(shown) == json.loads(path.read_text())
    by_version = cli(tmp_path, "weights", "show", version)
    assert by_version.code == 0
    assert "a_push" in by_version.out
    segments = _json(cli(tmp_path, "weights", "show", "--segments", "--json"))
    assert len(segments["segments"]) == 8  # 4 classes × 2 countries
    assert {"uplift_conversion", "segment", "weight"} <= set(segments["segments"][0])
    assert cli(tmp_path, "weights", "diff").code == 2  # one version only: nothing to compare
    ok = cli(tmp_path, "weights", "validate", "--json")
    assert ok.code == 0
    assert _json(ok)["ok"] is True
    path.write_text(path.read_text().replace('"weight": ', '"weight": 1', 1))
    bad = cli(tmp_path, "weights", "validate", "--json")
    assert bad.code == 5
    assert _json(bad)["ok"] is False
    refused = cli(tmp_path, "weights", "show")
    assert refused.code == 5
    assert "sha256 does not match" in refused.err


def test_validate_and_show_refuse_a_broken_directory(db, tmp_path):
    version = _json(cli(tmp_path, "weights", "export", "--no-evaluate", "--json"))[
        "weights_version"
    ]
    folder = tmp_path / "weights"
    latest = json.loads((folder / "latest.json").read_text())
    (folder / "latest.json").write_text(json.dumps({**latest, "file": "../upshot.duckdb"}))
    pointed = cli(tmp_path, "weights", "validate", "--json")
    assert pointed.code == 5
    assert "not a file of version" in _json(pointed)["versions"][-1]["error"]
    assert cli(tmp_path, "weights", "show").code == 5
    (folder / "latest.json").write_text(json.dumps(latest))
    # the latest version without its segments file: show refuses it, as validate does
    segments = folder / f"{version}.parquet"
    data = segments.read_bytes()
    segments.unlink()
    incomplete = cli(tmp_path, "weights", "show")
    assert incomplete.code == 5
    assert f"{version}.parquet: missing" in incomplete.err
    segments.write_bytes(data)
    assert cli(tmp_path, "weights", "show").code == 0
    (folder / "latest.json").unlink()
    no_latest = cli(tmp_path, "weights", "validate")
    assert no_latest.code == 5
    assert "latest.json: missing" in no_latest.out
    (folder / "latest.json").write_text(json.dumps(latest))
    (folder / "manifest.json").unlink()
    no_manifest = cli(tmp_path, "weights", "validate")
    assert no_manifest.code == 5
    assert "manifest.json is missing" in no_manifest.err


def test_export_refuses_a_directory_of_other_files(db, tmp_path):
    (tmp_path / "upshot.toml").write_text("")
    refused = cli(tmp_path, "weights", "export", "--no-evaluate", "--dir", ".")
    assert refused.code == 2
    assert "not empty and not a weights directory" in refused.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["upshot.duckdb", "upshot.toml"]


class _Crash(BaseException):
    """Stands in for SIGKILL between publishing and journaling."""


def test_a_version_published_by_a_killed_export_is_recorded_next_time(db, tmp_path, monkeypatch):
    import duckdb

    import upshot.attribution.weights.export as export_module
    from upshot.config import Config

    def crash(*args, **kwargs):
        raise _Crash

    folder = tmp_path / "weights"
    with monkeypatch.context() as patch:
        patch.setattr(export_module, "_journal", crash)
        with pytest.raises(_Crash):
            export_module.export(Config(), str(db), directory=folder, evaluate=False)
    version = read(folder)["weights_version"]  # published, but the warehouse never heard

    def recorded() -> list[tuple]:
        with duckdb.connect(str(db), read_only=True) as con:
            return con.execute(
                "SELECT w.weights_version, w.sha256, r.status FROM weight_versions w "
                "JOIN runs r USING (run_id)"
            ).fetchall()

    assert recorded() == []
    # a file that belongs to no version is reported by validate (it still passes)
    (folder / "stray-1.parquet").write_bytes(b"not a version")
    checked = cli(tmp_path, "weights", "validate", "--json")
    assert checked.code == 0, checked.err
    assert _json(checked)["orphans"] == ["stray-1.parquet"]
    assert "stray-1.parquet" in checked.err
    # the next export records what latest.json serves before anything else
    assert cli(tmp_path, "weights", "export", "--no-evaluate").code == 0
    sha = json.loads((folder / "latest.json").read_text())["sha256"]
    assert recorded() == [(version, sha, "reconciled")]
    assert cli(tmp_path, "weights", "export", "--no-evaluate").code == 0
    assert len(recorded()) == 1  # reconciled once


def test_evaluate_candidate_and_published(world):
    candidate = cli(world, "weights", "evaluate", "--run-id", "run-W43", "--json")
    assert candidate.code == 0, candidate.err
    doc = _json(candidate)
    assert doc["candidate"] is True
    assert doc["policy"] == "positive"
    assert (doc["status"], doc["split"]) == ("ok", "next_window")
    assert doc["window"] == {
        "start": "2026-10-26T00:00:00+00:00",
        "end": "2026-11-02T00:00:00+00:00",
    }
    assert {e["estimator"] for e in doc["estimates"]} == {"ips", "snips", "dr"}
    exported = cli(world, "weights", "export", "--run-id", "run-W43", "--no-evaluate", "--json")
    version = _json(exported)["weights_version"]
    published = cli(
        world, "weights", "evaluate", version, "--policy", "rank", "--cap", "1", "--json"
    )
    assert published.code == 0, published.err
    body = _json(published)
    assert body["candidate"] is False
    assert body["window"] == doc["window"]  # the week after the published file's window
    assert body["cap"] == 1
    assert body["share_sent_candidate"] <= doc["share_sent_candidate"]
    table = cli(world, "weights", "export", "--check", "--run-id", "run-W43")
    assert table.code == 0
    assert "off-policy estimate (positive, 2026-10-26T00:00:00+00:00 to" in table.out


def test_evaluation_without_later_decisions_is_not_a_number(world):
    """The newest run used every decision: `not_evaluated` with the reason, no estimate."""
    doc = _json(cli(world, "weights", "evaluate", "--json"))
    assert doc["status"] == "not_evaluated"
    assert doc["split"] == "next_window"
    assert doc["estimates"] == []
    assert "no logged decision with a propensity" in doc["reason"]
    table = cli(world, "weights", "export", "--check")
    assert table.code == 0
    assert ": not_evaluated" in table.out
    # a window overlapping the estimates' is allowed, but flagged as optimistic
    inside = cli(
        world, "weights", "evaluate", "--start", "2026-10-19", "--end", "2026-10-26", "--json"
    )
    assert inside.code == 0
    assert _json(inside)["split"] == "in_sample"
    assert "optimistic (split in_sample)" in inside.err


def test_schema_prints_the_shipped_schema():
    result = run_cli("weights", "schema")
    assert result.code == 0
    assert json.loads(result.out) == schema()


def test_usage_errors(tmp_path):
    missing = cli(tmp_path, "weights", "export")
    assert missing.code == 2
    assert "no warehouse here yet" in missing.err
    assert cli(tmp_path, "weights", "show").code == 2
    assert cli(tmp_path, "weights", "show", "no/such/thing.txt").code == 2
    assert cli(tmp_path, "weights", "export", "--cap", "0").code == 2


def test_killed_cli_exports_never_break_latest(db, tmp_path):
    """`upshot weights export` processes SIGKILLed at random moments (most land in start-up
    and estimation, the write phase is covered densely by test_weightfile); after each kill
    the served version verifies."""
    first = _json(cli(tmp_path, "weights", "export", "--no-evaluate", "--json"))
    allowed = {first["weights_version"]}
    rng = random.Random(5)
    for round_ in range(4):
        allowed.add(f"k{round_}")
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "upshot",
                "--db",
                str(db),
                "weights",
                "export",
                "--no-evaluate",
                "--force",
                "--version",
                f"k{round_}",
            ],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, 2.0))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        version = read(tmp_path / "weights")["weights_version"]
        assert version in allowed
        verify(tmp_path / "weights", version)
    assert cli(tmp_path, "weights", "validate").code == 0
