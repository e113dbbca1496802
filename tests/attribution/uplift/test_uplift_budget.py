"""A memory budget fails the class that outgrows it, not the run, and changes no other number."""

from __future__ import annotations

import dataclasses
import json

import polars as pl

from tests.attribution.uplift.uplift_world import BINARY, OBJECTIVES, SPECS, make_decisions
from tests.conftest import run_cli
from upshot.attribution.uplift.estimate import estimate_uplift
from upshot.config import Uplift
from upshot.results import dumps

# A worker holds about 0.45 GB once a linear fit's libraries are loaded, and the small
# classes' fits stayed under 520 MiB when measured; a 1M-decision class needs well over
# 700 MiB (its design matrix alone is ~0.1 GB, EconML copies it several times).
BUDGET = "640MiB"
SETTINGS = Uplift(nuisance="linear", segments=("country",), min_segment_size=100, seed=2)


def _estimate(frame, settings):
    return estimate_uplift(
        frame,
        outcomes=list(OBJECTIVES),
        binary=list(BINARY),
        settings=settings,
        refute=False,
        jobs=2,
    )


def test_the_class_over_its_budget_fails_and_the_others_are_untouched():
    small, _ = make_decisions(1000, seed=1)
    small = small.filter(pl.col("message_class") != "promo_push")
    big, _ = make_decisions(1_000_000, seed=2, specs={"promo_push": SPECS["promo_push"]})
    budgeted = dataclasses.replace(SETTINGS, memory_per_task=BUDGET)
    results = _estimate(pl.concat([small, big]), budgeted)
    status = results.classes["promo_push"]["status"]
    assert status == "failed:memory_budget (640 MiB)"
    overall = [e for e in results.estimates if e.message_class == "promo_push"]
    assert [e.status for e in overall] == [status] * len(OBJECTIVES)
    assert all(e.n_treated + e.n_control == 1_000_000 for e in overall)
    # every other class: the numbers it gets without any budget, bit for bit
    free = _estimate(small, SETTINGS)
    others = [e for e in results.documents() if e["message_class"] != "promo_push"]
    assert dumps(others) == dumps(free.documents())
    assert {e.status for e in free.estimates if e.segment == "all"} == {"ok"}


def test_the_cli_takes_a_budget_and_refuses_a_malformed_one(tmp_path):
    frame, _ = make_decisions(400, seed=3)
    table = tmp_path / "decisions.parquet"
    frame.filter(pl.col("message_class") == "promo_push").write_parquet(table)
    args = ["uplift", "--table", str(table), "--treatment-col", "treated"]
    args += ["--outcome-col", "engagement", "--covariates", "activity,platform"]
    args += ["--nuisance", "linear", "--no-refute", "--json"]
    bad = run_cli(*args, "--memory-per-task", "lots")
    assert bad.code == 2
    assert "--memory-per-task == 'lots', must look like 6GB, 512MB or 4GiB" in bad.err
    ok = run_cli(*args, "--memory-per-task", "4GB")
    assert ok.code == 0, ok.err[-2000:]
    [estimate] = [e for e in json.loads(ok.out)["estimates"] if e["segment"] == "all"]
    assert estimate["status"] == "ok"
    assert estimate["details"]["sampling"]["fit"]["rows"] == 400
