"""`export` end to end on a warehouse: uplift rows in, verified files out, drift, the breaker,
`--force`, `--check`, tampering, determinism and the journal."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from tests.attribution.weights.test_weights_data import (
    CREATED,
    estimate_rows,
    insert_estimates,
    truth_rows,
    world_warehouse,
)
from upshot import store
from upshot.attribution.weights.export import export
from upshot.attribution.weights.read import LATEST, MANIFEST, read, read_manifest
from upshot.config import Config, Governance
from upshot.errors import RefusedError, UsageError


@pytest.fixture(scope="module")
def world_db(tmp_path_factory):
    """A small simulated world (two ISO weeks, 2026-W43 and W44) with its true effects
    stored as uplift run `run-A` (the whole span, the newest) and as `run-W43`, estimated
    on the first week only (older)."""
    db = tmp_path_factory.mktemp("wh") / "upshot.duckdb"
    world = world_warehouse(db)
    insert_estimates(db, truth_rows(world), "run-A")
    first_week = [
        {**r, "week": "2026-W43"} for r in truth_rows(world, created_at=CREATED - timedelta(1))
    ]
    insert_estimates(db, first_week, "run-W43")
    return db, world


def _config(**governance) -> Config:
    return Config(governance=Governance(**governance))


def test_export_publishes_verified_weights_with_an_evaluation(world_db, tmp_path):
    db, world = world_db
    out = export(_config(), str(db), directory=tmp_path / "w")
    assert out.published is not None
    doc = read(tmp_path / "w")
    assert doc["weights_version"] == out.candidate.version
    assert doc["source"]["uplift_run_id"] == "run-A"
    harmful = world.truth["planted"]["harmful_reachability"]
    entry = next(c for c in doc["classes"] if c["message_class"] == harmful)
    assert entry["weight"] <= 0
    assert entry["status"] == "guardrail"
    assert "reachability uplift upper CI" in entry["reason"]
    # the data window: whole UTC days around the decisions
    assert doc["window"]["start"] == "2026-10-19T00:00:00+00:00"
    assert doc["window"]["end"] == "2026-11-02T00:00:00+00:00"
    # the run used every decision there is: nothing left to evaluate on, and it says so
    ev = out.evaluation
    assert ev is not None
    assert ev.status == "not_evaluated"
    assert ev.estimates == ()
    manifest = read_manifest(tmp_path / "w")["versions"][-1]
    assert manifest["provenance"]["uplift_run_id"] == "run-A"
    assert manifest["provenance"]["config_hash"] == _config().fingerprint()
    assert manifest["publication"]["forced"] is False
    evaluation = manifest["evaluation"]
    assert evaluation["policy"] == "positive"
    assert evaluation["status"] == "not_evaluated"
    assert evaluation["split"] == "next_window"
    assert evaluation["window"] == {
        "start": "2026-11-02T00:00:00+00:00",
        "end": "2026-11-16T00:00:00+00:00",
    }
    assert "no logged decision" in evaluation["reason"]
    assert evaluation["estimates"] == []
    with store.reading(Config(), str(db)) as con:
        journal = con.execute(
            "SELECT weights_version, uplift_run_id, forced, n_classes FROM weight_versions"
        ).fetchall()
        runs = con.execute("SELECT status FROM runs WHERE command = 'weights export'").fetchall()
    assert (doc["weights_version"], "run-A", False, 8) in journal
    assert ("ok",) in runs


def test_identical_inputs_give_byte_identical_files(world_db, tmp_path):
    db, _ = world_db
    for name in ("one", "two"):
        export(_config(), str(db), directory=tmp_path / name)
    one = {p.name: p.read_bytes() for p in (tmp_path / "one").iterdir()}
    two = {p.name: p.read_bytes() for p in (tmp_path / "two").iterdir()}
    assert one == two
    again = export(_config(), str(db), directory=tmp_path / "one")
    assert again.published is not None
    assert not again.published.changed
    assert again.drift.n_moved == 0


def test_check_writes_nothing(world_db, tmp_path):
    db, _ = world_db
    out = export(_config(), str(db), directory=tmp_path / "w", check=True, evaluate=False)
    assert out.published is None
    assert out.evaluation is None
    assert not (tmp_path / "w").exists()


def test_the_breaker_refuses_then_force_publishes_and_is_recorded(tmp_path):
    db = tmp_path / "upshot.duckdb"
    insert_estimates(db, estimate_rows(), "run-1")
    directory = tmp_path / "w"
    first = export(_config(), str(db), directory=directory, evaluate=False)
    assert first.published is not None
    later = CREATED + timedelta(days=7)
    insert_estimates(db, estimate_rows(scale=3.0, created_at=later), "run-2")
    refused = export(_config(), str(db), directory=directory, evaluate=False)
    assert refused.refused
    assert refused.drift.tripped
    assert refused.published is None
    assert read(directory)["weights_version"] == first.candidate.version
    checked = export(_config(), str(db), directory=directory, evaluate=False, check=True)
    assert checked.drift.tripped
    forced = export(_config(), str(db), directory=directory, evaluate=False, force=True)
    assert forced.forced
    assert read(directory)["weights_version"] == forced.candidate.version
    entry = read_manifest(directory)["versions"][-1]
    assert entry["publication"]["forced"] is True
    assert entry["publication"]["previous_version"] == first.candidate.version
    with store.reading(Config(), str(db)) as con:
        rows = con.execute("SELECT forced, breaker_tripped FROM weight_versions").fetchall()
        runs = con.execute(
            "SELECT status FROM runs WHERE command = 'weights export' ORDER BY started_at"
        ).fetchall()
    assert sorted(rows) == [(False, False), (True, True)]
    assert [r[0] for r in runs] == ["ok", "refused", "ok"]  # --check leaves no trace
    # an explicit run id still reaches the older estimates (and that would trip back)
    back = export(
        _config(), str(db), run_id="run-1", directory=directory, check=True, evaluate=False
    )
    assert back.candidate.version == first.candidate.version
    assert back.drift.tripped


def test_tampered_published_weights_block_the_comparison_unless_forced(tmp_path):
    db = tmp_path / "upshot.duckdb"
    insert_estimates(db, estimate_rows(), "run-1")
    directory = tmp_path / "w"
    first = export(_config(), str(db), directory=directory, evaluate=False)
    path = directory / f"{first.candidate.version}.json"
    doc = json.loads(path.read_text())
    doc["classes"][0]["weight"] = 99.0
    path.write_text(json.dumps(doc))
    insert_estimates(db, estimate_rows(scale=1.01, created_at=CREATED + timedelta(days=1)), "r2")
    with pytest.raises(RefusedError, match="failed verification"):
        export(_config(), str(db), directory=directory, evaluate=False)
    forced = export(_config(), str(db), directory=directory, evaluate=False, force=True)
    assert forced.forced
    assert read(directory)["weights_version"] == forced.candidate.version


def test_derived_reachability_rate_from_the_warehouse(world_db, tmp_path):
    db, world = world_db
    out = export(
        _config(reachability_rate="derived"), str(db), directory=tmp_path / "w", evaluate=False
    )
    policy = read(tmp_path / "w")["policy"]
    assert policy["rate_sources"]["reachability"] == "derived"
    push = world.sends.filter(world.sends["channel"] == "push")
    derived = policy["derived"]["push"]
    expected = push["treated"].sum() / push["user_id"].n_unique() / 2.0 * 26
    assert derived["future_sends_per_user"] == pytest.approx(expected)
    assert policy["channel_rates"]["push"]["reachability"] == pytest.approx(derived["rate"])
    assert out.candidate.weights.rates_for("push")["reachability"] == derived["rate"]


def test_evaluation_is_on_the_week_after_the_estimates(world_db, tmp_path):
    """Estimated on W43, evaluated on exactly the decisions of W44 (none of W43's)."""
    db, world = world_db
    out = export(_config(), str(db), run_id="run-W43", directory=tmp_path / "w")
    ev = out.evaluation
    assert ev is not None
    assert ev.status == "ok"
    assert ev.split == "next_window"
    assert ev.window == {"start": "2026-10-26T00:00:00+00:00", "end": "2026-11-02T00:00:00+00:00"}
    import polars as pl

    decided = world.sends["decided_at"]
    in_w44 = world.sends.filter(
        (decided >= pl.datetime(2026, 10, 26, time_zone="UTC"))
        & (decided < pl.datetime(2026, 11, 2, time_zone="UTC"))
    ).height
    assert 0 < ev.n_decisions + ev.n_excluded == in_w44 < world.sends.height
    assert {e.objective for e in ev.estimates} >= {"conversion", "value"}
    entry = read_manifest(tmp_path / "w")["versions"][-1]["evaluation"]
    assert (entry["status"], entry["split"]) == ("ok", "next_window")
    assert entry["window"] == ev.window
    assert entry["estimates"]


def test_rank_policy_evaluation(world_db, tmp_path):
    db, _ = world_db
    cfg = _config()
    out = export(
        cfg, str(db), run_id="run-W43", directory=tmp_path / "w", check=True, policy="rank", cap=1
    )
    assert out.evaluation is not None
    assert out.evaluation.policy == "rank"
    assert out.evaluation.cap == 1
    positive = export(cfg, str(db), run_id="run-W43", directory=tmp_path / "w", check=True)
    assert positive.evaluation is not None
    assert out.evaluation.share_sent_candidate <= positive.evaluation.share_sent_candidate


def test_no_estimates_and_unknown_run(tmp_path):
    db = tmp_path / "upshot.duckdb"
    store.connect(str(db), read_only=False).close()
    with pytest.raises(UsageError, match="no uplift estimates"):
        export(_config(), str(db), directory=tmp_path / "w")
    insert_estimates(db, estimate_rows(), "run-1")
    with pytest.raises(UsageError, match="--run-id == 'nope'"):
        export(_config(), str(db), run_id="nope", directory=tmp_path / "w")


def test_week_window_and_explicit_version(tmp_path):
    db = tmp_path / "upshot.duckdb"
    insert_estimates(db, estimate_rows(week="2026-W46"), "run-1")
    cfg = replace(_config(), governance=replace(Governance(), keep_versions=1))
    out = export(cfg, str(db), directory=tmp_path / "w", version="2026-W46.1", evaluate=False)
    doc = read(tmp_path / "w")
    assert doc["weights_version"] == "2026-W46.1"
    assert doc["window"] == {
        "start": "2026-11-09T00:00:00+00:00",
        "end": "2026-11-16T00:00:00+00:00",
        "week": "2026-W46",
    }
    assert out.published is not None
    assert sorted(p.name for p in (tmp_path / "w").iterdir() if p.name.endswith(".json")) == [
        "2026-W46.1.json",
        LATEST,
        MANIFEST,
    ]


def test_a_trailing_window_run_covers_its_recorded_window(world_db, tmp_path):
    """A run of `upshot run --weeks 2` is labelled W44 but made from W43 and W44: the
    weights window is the two weeks, and the evaluation the two weeks after."""
    db, world = world_db
    with store.writing(_config(), str(db), "test") as con:
        run_id = store.start_run(con, "uplift", _config())
        window = {"start": "2026-10-19T00:00:00+00:00", "end": "2026-11-02T00:00:00+00:00"}
        store.finish_run(con, run_id, "ok", {"week": "2026-W44", "weeks": 2, **window})
    rows = truth_rows(world, created_at=CREATED - timedelta(days=2))
    insert_estimates(db, [{**r, "week": "2026-W44"} for r in rows], run_id)
    out = export(_config(), str(db), run_id=run_id, directory=tmp_path / "w", check=True)
    assert out.candidate.document["window"] == {**window, "week": None}
    assert out.evaluation is not None
    assert out.evaluation.window == {
        "start": "2026-11-02T00:00:00+00:00",
        "end": "2026-11-16T00:00:00+00:00",
    }
