"""`upshot check` on simulated worlds with one fault each: the check that exists for the
fault fires (status, facts, exit code), and the clean world passes every check."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import run_cli
from upshot.config import Config
from upshot.errors import EXIT_DATA_QUALITY, EXIT_OK
from upshot.load import load
from upshot.simulate import make_world

TABLES = ("users", "assignments", "sends", "outcomes")


@pytest.fixture(scope="module")
def world():
    return make_world(users=800, weeks=1, seed=5)


def warehouse(tmp_path: Path, world, **frames: pl.DataFrame) -> str:
    """A warehouse holding the world, with `frames` in place of its tables."""
    db = str(tmp_path / "w.duckdb")
    for table in TABLES:
        frame = frames.get(table, getattr(world, table))
        path = tmp_path / f"{table}.parquet"
        frame.write_parquet(path)
        load(db, table, [str(path)], config=Config())
    return db


def check(db: str, *extra: str) -> tuple[int, dict[str, dict]]:
    result = run_cli("--db", db, *extra, "check", "--json")
    document = json.loads(result.out)
    assert set(document) == {"checks"}
    for c in document["checks"]:
        assert {"name", "status", "detail"} <= set(c)
        assert c["status"] in ("ok", "warning", "error")
    return result.code, {c["name"]: c for c in document["checks"]}


def test_the_clean_world_passes_every_check(tmp_path, world):
    code, checks = check(warehouse(tmp_path, world))
    assert code == EXIT_OK
    assert {n: c["status"] for n, c in checks.items()} == {
        "ids_in_outcomes": "ok",
        "ids_in_users": "ok",
        "events": "ok",
        "holdouts": "ok",
        "propensity": "ok",
        "windows": "ok",
        "timestamps": "ok",
        "covariates": "ok",
        "experiments": "ok",
    }
    assert checks["ids_in_users"]["share"] == 1.0


def test_numeric_ids_in_sends_against_prefixed_ids_in_outcomes_are_an_error(tmp_path, world):
    # the day-one fault: sends carry 123, outcomes u_000123
    sends = world.sends.with_columns(pl.col("user_id").str.extract(r"(\d+)$").cast(pl.Int64))
    db = warehouse(tmp_path, world, sends=sends)
    code, checks = check(db)
    assert code == EXIT_DATA_QUALITY
    ids = checks["ids_in_outcomes"]
    assert ids["status"] == "error"
    assert ids["share"] == 0.0
    assert ids["example_sends"].isdigit()
    assert ids["example_outcomes"] == world.outcomes["user_id"].min()
    assert checks["ids_in_users"]["status"] == "error"
    # the table output says it too, and the exit line names the first error
    text = run_cli("--db", db, "check")
    assert text.code == EXIT_DATA_QUALITY
    assert "ids_in_outcomes" in text.out
    assert "exit 3: " in text.err


def test_outcomes_for_part_of_the_users_are_a_warning(tmp_path, world):
    users = world.sends["user_id"].unique().sort()
    kept = set(users[: int(len(users) * 0.5)].to_list())  # half of the senders' ids
    outcomes = world.outcomes.filter(pl.col("user_id").is_in(kept))
    code, checks = check(warehouse(tmp_path, world, outcomes=outcomes))
    ids = checks["ids_in_outcomes"]
    assert ids["status"] == "warning"
    assert 0.1 <= ids["share"] < 0.9
    assert ids["found"] <= len(kept)
    assert code == EXIT_OK  # a warning alone does not fail


def test_an_event_named_differently_is_an_error_with_the_events_that_exist(tmp_path, world):
    outcomes = world.outcomes.with_columns(
        pl.col("event").replace({"active_day": "app_open", "subscription_start": "subscribed"})
    )
    code, checks = check(warehouse(tmp_path, world, outcomes=outcomes))
    assert code == EXIT_DATA_QUALITY
    events = checks["events"]
    assert events["status"] == "error"
    missing = {m["event"]: m for m in events["missing"]}
    assert set(missing) == {"active_day", "subscription_start"}
    assert "objectives.retention" in missing["active_day"]["used_by"]
    assert "metrics.active_days" in missing["active_day"]["used_by"]
    assert "objectives.conversion" in events["without_any_event"]
    assert "app_open" in events["present"]
    assert "subscribed" in missing["subscription_start"]["close_matches"]
    assert "app_open" in events["detail"]


def test_a_second_event_of_an_objective_missing_is_a_warning(tmp_path, world):
    outcomes = world.outcomes.filter(pl.col("event") != "email_unsubscribe")
    code, checks = check(warehouse(tmp_path, world, outcomes=outcomes))
    assert checks["events"]["status"] == "warning"
    assert checks["events"]["without_any_event"] == []
    assert code == EXIT_OK


def test_a_class_without_hold_outs_is_named(tmp_path, world):
    one = "promo_blast_push"
    sends = world.sends.with_columns(
        treated=pl.when(pl.col("message_class") == one).then(True).otherwise(pl.col("treated"))
    )
    _, checks = check(warehouse(tmp_path, world, sends=sends))
    assert checks["holdouts"]["status"] == "warning"
    assert checks["holdouts"]["without_holdout"] == [one]
    every = world.sends.with_columns(treated=pl.lit(True))
    (tmp_path / "all").mkdir()
    code, checks = check(warehouse(tmp_path / "all", world, sends=every))
    assert checks["holdouts"]["status"] == "error"
    assert code == EXIT_DATA_QUALITY


def test_a_targeted_class_without_propensity_or_pre_period_covariates_is_named(tmp_path, world):
    one = "new_release_push"
    is_one = pl.col("message_class") == one
    sends = world.sends.with_columns(
        randomized=pl.when(is_one).then(False).otherwise(pl.col("randomized")),
        propensity=pl.when(is_one).then(None).otherwise(pl.col("propensity")),
    )
    db = warehouse(tmp_path, world, sends=sends)
    # by default each objective's pre-period value is a covariate: the class is adjustable
    code, checks = check(db)
    assert checks["propensity"]["status"] == "ok"
    assert checks["propensity"]["unadjusted"] == []
    # with the pre-window off, nothing adjusts for its targeting
    (tmp_path / "off.toml").write_text('[uplift]\npre_window = "0d"\n')
    code, checks = check(db, "--config", str(tmp_path / "off.toml"))
    assert checks["propensity"]["status"] == "warning"
    assert checks["propensity"]["unadjusted"] == [one]
    assert code == EXIT_OK


def test_outcomes_ending_before_the_windows_do_are_a_warning(tmp_path, world):
    last_decision = world.sends["decided_at"].max()
    cut = last_decision + pl.duration(days=2)  # decisions of the last 5 days lose window days
    outcomes = world.outcomes.filter(pl.col("occurred_at") <= cut)
    code, checks = check(warehouse(tmp_path, world, outcomes=outcomes))
    windows = checks["windows"]
    assert windows["status"] == "warning"
    # every objective has a 7d window: the decisions after cut - 7d are cut short
    cutoff = world.outcomes.filter(pl.col("occurred_at") <= cut)["occurred_at"].max()
    expected = world.sends.filter(pl.col("decided_at") + pl.duration(days=7) > cutoff).height
    assert windows["incomplete"]["conversion"]["decisions"] == expected
    assert windows["incomplete"]["conversion"]["share"] == expected / world.sends.height
    assert 0 < expected < world.sends.height
    assert code == EXIT_OK
    # outcomes that end before any window does: nothing can be measured
    early = world.outcomes.filter(pl.col("occurred_at") <= world.sends["decided_at"].min())
    (tmp_path / "early").mkdir()
    code, checks = check(warehouse(tmp_path / "early", world, outcomes=early))
    assert checks["windows"]["status"] == "error"
    assert code == EXIT_DATA_QUALITY


def test_timestamps_without_a_zone_are_counted(tmp_path, world):
    naive = world.outcomes.with_columns(pl.col("occurred_at").dt.replace_time_zone(None))
    code, checks = check(warehouse(tmp_path, world, outcomes=naive))
    stamps = checks["timestamps"]
    assert stamps["status"] == "warning"
    assert stamps["count"] == world.outcomes.height
    assert stamps["tables"] == {"outcomes": world.outcomes.height}
    # the same file as CSV text: a zone-less string counts, one with an offset does not
    sends = tmp_path / "sends.csv"
    sends.write_text(
        "send_id,user_id,message_class,channel,decided_at,treated\n"
        "x1,u1,a,push,2026-10-20 10:00:00,true\n"
        "x2,u1,a,push,2026-10-20T10:00:00+02:00,false\n"
        "x3,u1,a,push,2026-10-20,false\n"
    )
    report = load(str(tmp_path / "csv.duckdb"), "sends", [str(sends)], config=Config())
    assert report.files[0].naive_timestamps == 2
    assert code == EXIT_OK


def test_a_mostly_null_covariate_is_named(tmp_path, world):
    users = world.users.with_columns(
        country=pl.when(pl.int_range(pl.len()) % 10 < 7).then(None).otherwise(pl.col("country"))
    )
    _, checks = check(warehouse(tmp_path, world, users=users))
    covariates = checks["covariates"]
    assert covariates["status"] == "warning"
    assert set(covariates["mostly_null"]) == {"country"}
    assert covariates["mostly_null"]["country"] == pytest.approx(0.7, abs=1 / len(users))


def test_an_experiment_without_outcomes_is_named(tmp_path, world):
    # the experiment's users are assigned under ids no other table has
    experiment = world.assignments["experiment_id"].unique().sort()[0]
    assignments = world.assignments.with_columns(
        user_id=pl.when(pl.col("experiment_id") == experiment)
        .then("x" + pl.col("user_id"))
        .otherwise(pl.col("user_id"))
    )
    code, checks = check(warehouse(tmp_path, world, assignments=assignments))
    assert checks["experiments"]["status"] == "warning"
    assert checks["experiments"]["without_outcomes"] == [experiment]
    assert code == EXIT_OK


def test_a_warehouse_without_sends_is_an_error_that_says_what_to_load(tmp_path, world):
    db = str(tmp_path / "w.duckdb")
    world.users.write_parquet(tmp_path / "users.parquet")
    load(db, "users", [str(tmp_path / "users.parquet")], config=Config())
    code, checks = check(db)
    assert code == EXIT_DATA_QUALITY
    assert checks["ids_in_outcomes"]["detail"] == "no sends loaded: `upshot load sends FILES`"


def test_check_has_help():
    result = run_cli("check", "--help")
    assert result.code == 0
    assert "Exit code 3" in result.out


def test_upshot_run_stops_on_a_check_error_unless_fail_on_never(tmp_path, world, monkeypatch):
    import sys

    # the estimation stages are not what is tested: without uplift they are `unavailable`
    monkeypatch.setitem(sys.modules, "upshot.attribution.uplift.estimate", None)
    data = tmp_path / "data"
    data.mkdir()
    outcomes = world.outcomes.with_columns(pl.col("event").replace({"active_day": "app_open"}))
    for table in TABLES:
        (outcomes if table == "outcomes" else getattr(world, table)).write_parquet(
            data / f"{table}.parquet"
        )
    sources = ", ".join(f'{t} = "{data / t}.parquet"' for t in TABLES)
    toml = tmp_path / "upshot.toml"
    toml.write_text(
        f'[warehouse]\npath = "{tmp_path / "w.duckdb"}"\n[load]\nsources = {{ {sources} }}\n'
        f'[report]\ndirectory = "{tmp_path / "reports"}"\n'
        f'[governance]\ndirectory = "{tmp_path / "weights"}"\n'
    )
    week = "2026-W43"
    stopped = run_cli("--config", str(toml), "run", "--week", week, "--json")
    assert stopped.code == EXIT_DATA_QUALITY, stopped.err
    document = json.loads(stopped.out)
    assert document["exit_code"] == EXIT_DATA_QUALITY
    assert document["reason"].startswith("upshot check: 1 error(s)")
    (only,) = document["weeks"]
    assert [s["stage"] for s in only["stages"]] == ["load", "check"]
    assert only["stages"][1]["status"] == "failed"
    assert not (tmp_path / "reports" / week).exists()  # nothing estimated, nothing reported

    went_on = run_cli("--config", str(toml), "run", "--week", week, "--json", "--fail-on", "never")
    document = json.loads(went_on.out)
    assert went_on.code == EXIT_OK, went_on.err
    stages = {s["stage"]: s for s in document["weeks"][0]["stages"]}
    assert list(stages)[:3] == ["load", "check", "uplift"]
    assert stages["check"]["status"] == "partial"
    findings = {c["name"]: c["status"] for c in stages["check"]["outputs"]["checks"]}
    assert findings["events"] == "error"
    # the report's data-health section shows the findings
    index = (tmp_path / "reports" / week / "index.html").read_text()
    assert "Data checks (upshot check)" in index
    assert "outcomes never contain active_day" in index
