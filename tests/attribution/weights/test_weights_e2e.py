"""On simulated data, through the real uplift engine: the class planted as harmful to
reachability gets no positive weight, with the reason, and the file verifies."""

from __future__ import annotations

import json

import pytest

from tests.attribution.weights.test_weights_data import world_warehouse
from tests.conftest import run_cli
from upshot.attribution.weights.read import read


@pytest.mark.slow
def test_planted_harmful_class_gets_no_positive_weight(tmp_path):
    db = tmp_path / "upshot.duckdb"
    world = world_warehouse(db, users=5000, weeks=2, seed=11)
    harmful = world.truth["planted"]["harmful_reachability"]
    # at this sample size the opt-out CIs are about ±0.01 wide: a limit the harmless classes
    # can meet, so that the guardrail has to tell the planted class apart
    (tmp_path / "upshot.toml").write_text("[governance]\nmax_optout_harm = 0.03\n")
    fitted = run_cli(
        "--db",
        str(db),
        "uplift",
        "--nuisance",
        "linear",
        "--no-refute",
        "--seed",
        "0",
        "--json",
        cwd=tmp_path,
    )
    assert fitted.code == 0, fitted.err
    exported = run_cli("--db", str(db), "weights", "export", "--json", cwd=tmp_path)
    assert exported.code == 0, exported.err
    body = json.loads(exported.out)
    assert body["published"] is True
    entry = next(c for c in read(tmp_path / "weights")["classes"] if c["message_class"] == harmful)
    assert entry["weight"] <= 0
    assert entry["status"] == "guardrail"
    assert "reachability uplift upper CI" in entry["reason"]
    # the harm was detected, not merely left uncertain: the opt-out uplift's CI excludes 0
    assert entry["components"]["reachability"]["uplift_ci_lower"] > 0
    # the run used both weeks: no later decisions, so no off-policy number
    assert body["evaluation"]["status"] == "not_evaluated"
    assert body["evaluation"]["split"] == "next_window"
    others = [c for c in body["classes"] if c["message_class"] != harmful]
    assert any(c["weight"] > 0 for c in others)
