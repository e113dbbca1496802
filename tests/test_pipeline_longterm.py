"""The weekly job's longterm stage: projections and backtest under the week's uplift run,
or skipped with the reason (no [longterm] outcome, no uplift run, too short a history).

The projection's numbers are tested in tests/attribution/longterm (against the
surrogate-index package, simulated coverage, the planted class on the simulated world);
here the stage is checked to run that code on the week and store what it returns.
"""

from __future__ import annotations

import dataclasses

import duckdb
import pytest

from tests.attribution.uplift.uplift_world import load_world
from upshot import store
from upshot.config import Config
from upshot.pipeline.stage_longterm import stage_longterm

WEEK = "2026-W43"  # the simulated decision week (from 2026-10-19)


def _config(path, **longterm) -> Config:
    base = Config()
    return dataclasses.replace(
        base,
        warehouse=dataclasses.replace(base.warehouse, path=str(path)),
        longterm=dataclasses.replace(base.longterm, **longterm),
    )


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    from upshot.simulate import make_world

    path = tmp_path_factory.mktemp("lt") / "upshot.duckdb"
    con = store.connect(str(path), read_only=False)
    load_world(con, make_world(users=2_500, weeks=1, seed=5, longterm=True))
    run_id = store.start_run(con, "uplift", Config())
    store.finish_run(con, run_id, "ok", {"week": WEEK})
    con.close()
    return path, run_id


def test_the_stage_stores_every_projection_under_the_uplift_run(warehouse):
    path, run_id = warehouse
    # the backtest off keeps this quick (it is tested on the simulated world)
    config = _config(path, backtest=False)
    stage = stage_longterm(config, str(path), WEEK, run_id, None)
    assert stage.stage == "longterm"
    assert stage.status == "ok", stage.detail
    assert stage.attempted == 8
    assert "not backtested" in stage.detail
    con = duckdb.connect(str(path), read_only=True)
    rows = con.execute(
        "SELECT message_class, outcome, status, backtest, week FROM longterm_estimates "
        "WHERE run_id = ? ORDER BY message_class, outcome",
        [run_id],
    ).fetchall()
    con.close()
    assert len(rows) == 8 * 2
    assert {r[1] for r in rows} == {"retention_180d", "subscribed_180d"}
    assert {r[3] for r in rows} == {"not_backtested"}
    assert {r[4] for r in rows} == {WEEK}
    projected = sum(r[2] == "ok" for r in rows) // 2
    assert stage.detail.startswith(f"{projected} of 8 classes projected onto 2 outcomes from ")


def test_skipped_with_the_reason(warehouse):
    path, run_id = warehouse
    none = stage_longterm(_config(path, outcomes={}), str(path), WEEK, run_id, None)
    assert (none.status, none.detail) == ("skipped", "no [longterm] outcome configured")
    no_run = stage_longterm(_config(path), str(path), WEEK, None, None)
    assert (no_run.status, no_run.detail) == ("skipped", "no uplift run for the week")
    short = stage_longterm(_config(path, min_history=100_000, max_history=100_000), str(path),
                           WEEK, run_id, None)  # fmt: skip
    assert short.status == "skipped"
    # the history: [cut - 52 weeks, cut), cut = 2026-10-19 - 180 days = 2026-04-22
    assert short.detail == (
        "history too short: 1,273 decisions from 2025-04-23 to 2026-04-22 (old enough for "
        "the 180-day outcomes), longterm.min_history is 100,000"
    )
    # an earlier week than the history cohort: no decision old enough at all
    early = stage_longterm(_config(path), str(path), "2026-W01", run_id, None)
    assert early.status == "skipped"
    assert early.detail.startswith("history too short: 0 decisions from ")
