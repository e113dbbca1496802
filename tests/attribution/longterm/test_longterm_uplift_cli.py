"""`upshot uplift` (warehouse path) adds the projected long-term rows of issue 16."""

from __future__ import annotations

import json
import math

import duckdb
import pytest

from tests.attribution.uplift.uplift_world import load_world
from tests.conftest import run_cli
from upshot import store

WEEK = "2026-W43"  # the simulated decision week (from 2026-10-19)
ARGS = ("--class", "trial_offer_email", "--objective", "conversion", "--nuisance", "linear",
        "--no-refute", "--json")  # fmt: skip


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    from upshot.simulate import make_world

    folder = tmp_path_factory.mktemp("lt")
    world = make_world(users=2_500, weeks=1, seed=5, longterm=True)
    path = folder / "upshot.duckdb"
    con = store.connect(str(path), read_only=False)
    load_world(con, world)
    con.close()
    # the backtest is tested on the simulated world through the same function; here
    # it is off so the command stays quick, and every class is `not_backtested`
    toml = folder / "upshot.toml"
    toml.write_text(f'[warehouse]\npath = "{path}"\n\n[longterm]\nbacktest = false\n')
    return toml, path


def test_projected_rows_beside_the_short_term_ones(warehouse):
    toml, path = warehouse
    result = run_cli("--config", str(toml), "uplift", "--week", WEEK, *ARGS)
    assert result.code == 0, result.err
    rows = json.loads(result.out)["estimates"]
    short = [r for r in rows if not r["projected"]]
    projected = [r for r in rows if r["projected"]]
    assert {r["objective"] for r in short} == {"conversion"}
    assert all(r["projected"] is False and r["backtest"] is None for r in short)
    assert [(r["message_class"], r["objective"]) for r in projected] == [
        ("trial_offer_email", "retention_180d"), ("trial_offer_email", "subscribed_180d")
    ]  # fmt: skip
    for r in projected:
        assert r["segment"] == "all"
        assert r["estimator"] == "surrogate_index"
        assert r["method"] == "surrogate_index_eif"
        assert r["status"] == "ok"
        assert r["backtest"] == "not_backtested"
        assert r["ate_ci_lower"] < r["ate"] < r["ate_ci_upper"]
        assert r["ate_ci_upper"] - r["ate"] == pytest.approx(1.959964 * r["ate_se"], rel=1e-5)
        assert r["details"]["n_history"] > 1000
        # the projection's own short-term effects, one per surrogate (every objective)
        assert set(r["details"]["short_term"]) == {
            "conversion", "engagement", "retention", "reachability"
        }  # fmt: skip
    assert set(projected[0]) == set(short[0]), "projected rows have the fields of the others"
    run_id = json.loads(result.out)["run_id"]
    con = duckdb.connect(str(path), read_only=True)
    stored = con.execute(
        "SELECT outcome, estimate, backtest, week FROM longterm_estimates WHERE run_id = ? "
        "ORDER BY outcome",
        [run_id],
    ).fetchall()
    con.close()
    assert [(o, b, w) for o, _, b, w in stored] == [
        ("retention_180d", "not_backtested", WEEK), ("subscribed_180d", "not_backtested", WEEK)
    ]  # fmt: skip
    assert [e for _, e, _, _ in stored] == [r["ate"] for r in projected]


def test_no_longterm_skips_the_projection(warehouse):
    toml, _ = warehouse
    result = run_cli("--config", str(toml), "uplift", "--week", WEEK, *ARGS[:-1], "--no-longterm",
                     "--json")  # fmt: skip
    assert result.code == 0, result.err
    assert not any(r["projected"] for r in json.loads(result.out)["estimates"])


def test_without_history_there_is_no_projected_row(tmp_path):
    from upshot.simulate import make_world

    path = tmp_path / "upshot.duckdb"
    con = store.connect(str(path), read_only=False)
    load_world(con, make_world(users=800, weeks=1, seed=5))
    con.close()
    result = run_cli("--db", str(path), "uplift", "--week", WEEK, *ARGS)
    assert result.code == 0, result.err
    rows = json.loads(result.out)["estimates"]
    assert rows
    assert not any(r["projected"] for r in rows)
    assert "longterm: no history decision old enough yet; no projection" in result.err
    assert all(not math.isnan(r["n_treated"]) for r in rows)
