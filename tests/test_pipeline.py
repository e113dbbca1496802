"""The weekly job end to end on a small simulated world with known truth.

One uplift fit of a week costs tens of seconds, so the expensive runs happen once per
module: week 1 with one class made to fail, then week 1 again (idempotence). Week 2,
restatement, unavailable stages, the CLI and the demo run with the uplift part blocked
(`unavailable`), which exercises the orchestration at almost no cost.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import run_cli
from upshot.config import Config
from upshot.errors import EXIT_ERROR, EXIT_OK
from upshot.pipeline import Stage, WeekResult, outcome, run
from upshot.pipeline.job import _problems
from upshot.simulate import simulate

W1, W2 = "2026-W43", "2026-W44"
FAILING = "whatsapp_reminder"
USERS = 5000  # enough for the planted opt-out harm (+2.4 points) to clear its CI


def _config(root: Path, data: Path) -> Config:
    base = Config()
    return dataclasses.replace(
        base,
        warehouse=dataclasses.replace(base.warehouse, path=str(root / "upshot.duckdb"),
                                      temp_directory=str(root / "tmp")),
        load=dataclasses.replace(base.load, sources={
            "users": str(data / "users.parquet"),
            "assignments": str(data / "assignments.parquet"),
            "sends": str(data / "sends"),
            "outcomes": str(data / "outcomes"),
        }),
        # the cheapest honest settings: linear nuisances, the fewest folds and refutations
        # pre_window "0d": the planted opt-out harm clears its Holm-corrected critical bar
        # by a hair at 5,000 users; the pre-period covariates move it within noise
        # (promo_blast_push reachability +0.0233 -> +0.0229, SE 0.0088) and across the bar.
        # Every class here logs its propensity, so none is at confounding_risk.
        uplift=dataclasses.replace(base.uplift, nuisance="linear", folds=2, refute_sample=500,
                                   refute_simulations=2, segments=(), jobs=1, pre_window="0d"),
        report=dataclasses.replace(base.report, directory=str(root / "reports")),
        governance=dataclasses.replace(base.governance, directory=str(root / "weights")),
    )  # fmt: skip


def _block_uplift(monkeypatch):
    # an import of a module set to None raises ImportError: the part "is not installed"
    monkeypatch.setitem(sys.modules, "upshot.attribution.uplift.estimate", None)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("weekly")
    data = root / "data"
    simulate(data, users=USERS, weeks=2, seed=11)
    config = _config(root, data)
    truth = json.loads((data / "truth.json").read_text())
    with pytest.MonkeyPatch.context() as mp:
        import upshot.attribution.uplift.classfit as uplift

        real = uplift._fit_class

        def broken(task, *args, **kwargs):
            # the class's own fit breaks, inside the uplift code's per-class guard
            if task.message_class == FAILING:
                raise RuntimeError("singular matrix (injected by the test)")
            return real(task, *args, **kwargs)

        mp.setattr(uplift, "_fit_class", broken)
        first = run(config, config.warehouse.path, W1, fail_on="critical")
        snapshot = _files(root / "reports" / W1)
        again = run(config, config.warehouse.path, W1, fail_on="critical")
    return {"root": root, "config": config, "truth": truth, "first": first, "again": again,
            "snapshot": snapshot}  # fmt: skip


def test_every_stage_runs_in_order_and_the_failing_class_is_reported(world):
    job = world["first"]
    (week,) = job.weeks
    assert [s.stage for s in week.stages] == [
        "load",
        "check",
        "uplift",
        "longterm",
        "experiments",
        "weights",
        "touches",
        "report",
    ]
    status = {s.stage: s for s in week.stages}
    assert status["load"].status == "ok"
    assert status["check"].status == "ok", status["check"].detail
    assert status["uplift"].status == "partial"
    assert status["uplift"].attempted == 8
    assert [f["subject"] for f in status["uplift"].failures] == [FAILING]
    assert "singular matrix" in status["uplift"].failures[0]["status"]
    # a world without a history cohort: nothing old enough to learn the projection from
    assert status["longterm"].status == "skipped"
    assert status["longterm"].detail.startswith("history too short: 0 decisions from ")
    assert status["experiments"].status == "ok"
    # at 5,000 users every class's opt-out upper bound is over max_optout_harm (0.002):
    # the weights are published but weight nothing, which the stage and an alert say
    assert status["weights"].status == "warning"
    assert "no class has a positive weight" in status["weights"].detail
    assert status["weights"].outputs["weights_version"]
    assert status["touches"].status == "ok"
    assert status["report"].status == "ok"
    # one class of eight is under report.max_failed_share: the job did not fail on it ...
    assert week.status == "partial"
    assert week.problems == ()
    # ... it is an alert. No opt-out uplift is significantly over the guardrail once the
    # guardrail tests share the week's one family with the class x objective and headline
    # tests (39 here): resume_watching_push (+0.0158, SE 0.0053, one-sided p 0.0044) was
    # critical when they were corrected among the 7 opt-out tests alone (0.031), and is a
    # warning now (adjusted p >= 0.05); so are the others, the planted promo_blast_push
    # included (+0.0214, SE 0.0088, p 0.014 -> 0.46). No critical alert: exit 0 under --fail-on
    # critical (test_a_critical_alert_makes_the_job_exit_3_unless_fail_on_never).
    rules = {(a.rule, a.subject) for a in week.alerts}
    assert ("estimation_failed", FAILING) in rules
    assert ("stage_warning", "weights") in rules
    harmful = world["truth"]["planted"]["harmful_reachability"]
    (harm,) = [r for r in week.report.data.uplift if r["message_class"] == harmful
               and r["objective"] == "reachability"]  # fmt: skip
    assert ("optout_harm", harmful) in rules
    assert not harm["over_guardrail"]
    assert not [a for a in week.alerts if a.severity == "critical"]
    assert job.exit_code == EXIT_OK
    index = (week.report.directory / "index.html").read_text()
    assert FAILING in index


def test_a_critical_alert_makes_the_job_exit_3_unless_fail_on_never(world):
    from upshot.errors import EXIT_DATA_QUALITY
    from upshot.reports.alerts import Alert, Alerts

    (week,) = world["first"].weeks
    critical = Alerts(week.week, (Alert("uplift_negative", "critical", "c", "c hurts"),))
    paged = dataclasses.replace(week, report=dataclasses.replace(week.report, alerts=critical))
    assert outcome((paged,), "critical").exit_code == EXIT_DATA_QUALITY
    assert outcome((paged,), "never").exit_code == EXIT_OK
    assert outcome((week,), "critical").exit_code == EXIT_OK  # warnings only
    assert outcome((week,), "warning").exit_code == EXIT_DATA_QUALITY


def test_the_planted_harmful_class_is_alerted_and_the_zero_class_is_not_significant(world):
    planted = world["truth"]["planted"]
    (week,) = world["first"].weeks
    harm = [a for a in week.alerts if a.rule == "optout_harm"]
    assert planted["harmful_reachability"] in {a.subject for a in harm}
    zero = [r for r in week.report.data.uplift if r["message_class"] == planted["zero_effect"]]
    assert len(zero) == 4
    assert all(r["status"] == "ok" for r in zero)
    assert all(r["significant"] == 0 for r in zero)
    assert planted["zero_effect"] not in {a.subject for a in week.alerts}
    alerts = json.loads((week.report.directory / "alerts.json").read_text())
    assert planted["harmful_reachability"] in {a["subject"] for a in alerts["alerts"]}


def test_rerunning_the_week_gives_the_same_outputs(world):
    first, again = world["first"].weeks[0], world["again"].weeks[0]
    assert again.run_id != first.run_id
    after = _files(world["root"] / "reports" / W1)
    before = world["snapshot"]
    assert set(after) == set(before)
    # provenance.json names the runs, which are new; everything else is byte-identical
    changed = sorted(name for name in after if after[name] != before[name])
    assert changed == ["provenance.json"]
    old, new = (json.loads(x["provenance.json"]) for x in (before, after))
    assert old["weekly_run_id"] == first.run_id
    assert new["weekly_run_id"] == again.run_id


def test_the_rerun_is_the_one_current_run_of_the_week(world):
    import duckdb

    config = world["config"]
    con = duckdb.connect(config.warehouse.path, read_only=True)
    try:
        rows = con.execute(
            "SELECT run_id, current FROM weekly_runs WHERE week = ? ORDER BY started_at", [W1]
        ).fetchall()
        alerts = con.execute(
            "SELECT count(*) FROM alerts WHERE run_id = ?", [world["again"].weeks[0].run_id]
        ).fetchone()
    finally:
        con.close()
    assert rows == [(world["first"].weeks[0].run_id, False), (world["again"].weeks[0].run_id, True)]
    assert alerts[0] == len(world["again"].weeks[0].alerts)


def test_no_output_file_holds_a_user_id(world):
    root = world["root"]
    users = pl.read_parquet(root / "data" / "users.parquet").get_column("user_id").to_list()
    sample = [u.encode() for u in users[:: max(1, len(users) // 200)]]
    for folder in (root / "reports", root / "weights"):
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert b"user_id" not in data, path
                assert not any(u in data for u in sample), path


def test_a_later_week_leaves_the_earlier_one_untouched_and_restate_redoes_it(world, monkeypatch):
    config, root = world["config"], world["root"]
    _block_uplift(monkeypatch)
    before = _files(root / "reports" / W1)
    current = _current(config)
    # late data for W1 arrives with W2's files: a new outcomes file with rows inside W1
    late = root / "data" / "outcomes" / "late" / "part-late.parquet"
    late.parent.mkdir(parents=True)
    rows = pl.read_parquet(root / "data" / "outcomes" / "date=2026-10-21" / "part-0.parquet")
    rows.head(20).with_columns(pl.col("event_id") + "-late").write_parquet(late)
    job = run(config, config.warehouse.path, W2, fail_on="never")
    (week,) = job.weeks
    status = {s.stage: s.status for s in week.stages}
    assert status["uplift"] == "unavailable"
    assert status["weights"] == "skipped"
    assert week.status == "ok"
    assert job.exit_code == EXIT_OK
    rules = {(a.rule, a.subject) for a in week.alerts}
    assert ("stage_unavailable", "uplift") in rules
    assert ("late_data", W1) in rules
    assert "--restate" in next(a.message for a in week.alerts if a.rule == "late_data")
    # without --restate the earlier week is untouched: same files, same current run
    assert _files(root / "reports" / W1) == before
    assert _current(config)[W1] == current[W1]
    job = run(config, config.warehouse.path, W2, restate=True, fail_on="never", load=False)
    assert [w.week for w in job.weeks] == [W1, W2]
    assert {s.stage: s.status for s in job.weeks[0].stages}["weights"] == "skipped"
    assert _current(config)[W1] == job.weeks[0].run_id
    assert not [a for a in job.weeks[1].alerts if a.rule == "late_data"]


def _current(config: Config) -> dict[str, str]:
    from upshot.pipeline.job import weekly_runs

    return {r["week"]: r["run_id"] for r in weekly_runs(config, config.warehouse.path)}


def test_too_many_failed_classes_fail_the_job():
    config = Config()
    uplift = Stage(
        "uplift",
        "partial",
        attempted=8,
        failures=tuple({"subject": f"c{i}", "status": "failed:x"} for i in range(3)),
    )
    assert _problems(config, [Stage("load", "ok"), uplift]) == [
        "uplift: 3 of 8 failed (38% > report.max_failed_share 25%)"
    ]  # fmt: skip
    two = dataclasses.replace(uplift, failures=uplift.failures[:2])
    assert _problems(config, [two]) == []
    # a tripped circuit breaker is a governance stop (a critical alert), not a breakage
    assert _problems(config, [Stage("weights", "refused", detail="breaker")]) == []
    broken = Stage("weights", "failed", detail="OSError: disk full")
    assert _problems(config, [broken]) == ["stage weights failed: OSError: disk full"]
    week = WeekResult("2026-W01", "r", "failed", (broken,), ("stage weights failed",))
    assert outcome((week,), "never").exit_code == EXIT_ERROR


def test_the_cli_runs_a_week_and_prints_one_json_document(world, monkeypatch):
    config, root = world["config"], world["root"]
    _block_uplift(monkeypatch)
    toml = root / "cli.toml"
    toml.write_text(
        f'[warehouse]\npath = "{config.warehouse.path}"\n'
        f'[report]\ndirectory = "{root / "reports"}"\n'
        f'[governance]\ndirectory = "{root / "weights"}"\n'
    )
    result = run_cli("--config", str(toml), "run", "--week", W2, "--no-load", "--json",
                     "--fail-on", "warning")  # fmt: skip
    document = json.loads(result.out)
    assert result.code == document["exit_code"]
    assert [w["week"] for w in document["weeks"]] == [W2]
    assert next(s["stage"] for s in document["weeks"][0]["stages"]) == "load"
    assert document["weeks"][0]["report"]["index"].endswith(f"{W2}/index.html")
    report = run_cli("--config", str(toml), "report", "weekly", "--week", W1, "--json",
                     "--out", str(root / "standalone"))  # fmt: skip
    assert report.code == 0, report.err
    assert json.loads(report.out)["week"] == W1
    assert (root / "standalone" / W1 / "index.html").exists()
    bad = run_cli("--config", str(toml), "run", "--week", "2026-47")
    assert bad.code == 2
    assert "--week == '2026-47', must look like 2026-W47" in bad.err


def test_help_teaches(tmp_path):
    for args in (["run", "--help"], ["demo", "--help"], ["report", "weekly", "--help"]):
        result = run_cli(*args)
        assert result.code == 0
        assert "Example" in result.out or "cron" in result.out or "Afterwards" in result.out


def test_the_demo_runs_every_week_and_says_where_things_are(tmp_path, monkeypatch):
    from upshot.pipeline.demo import MARKER, demo, prepare

    _block_uplift(monkeypatch)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "keep.txt").write_text("not a demo")
    result = run_cli("demo", "--out", str(tmp_path / "junk"), "--users", "500")
    assert result.code == 2
    assert "not an upshot demo folder" in result.err
    out = tmp_path / "demo"
    result = demo(out, users=600, weeks=1, seed=3)
    assert result.weeks == (W1,)
    assert [w.week for w in result.job.weeks] == [W1]
    document = result.document()
    assert Path(document["latest_report"]).exists()
    assert document["planted"]["harmful_reachability"] == "promo_blast_push"
    toml = (out / "upshot.toml").read_text()
    assert 'path = "upshot.duckdb"' in toml  # relative: the folder can be moved
    # a previous demo folder is emptied of the demo's own files, and only of them
    (out / "mine.txt").write_text("a user's note")
    prepare(out)
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "mine.txt"])


def test_weights_that_weight_nothing_are_a_warning_with_the_reason(tmp_path):
    """Every class blocked (max_optout_harm 0: every opt-out upper bound is over it): the
    weights are published, the stage says `warning` and why, and the report alerts."""
    from tests.attribution.weights.test_weights_data import estimate_rows, insert_estimates
    from upshot.pipeline.stages import stage_weights
    from upshot.reports.alerts import stage_health

    db = tmp_path / "upshot.duckdb"
    insert_estimates(db, estimate_rows(segments=("all",)), "run-1")
    base = Config()
    config = dataclasses.replace(
        base, governance=dataclasses.replace(base.governance, max_optout_harm=0.0)
    )
    stage = stage_weights(config, str(db), "run-1", tmp_path / "weights")
    assert stage.status == "warning"
    assert stage.outputs["weights_version"]
    assert stage.detail.startswith(
        "no class has a positive weight, the published weights send nothing: "
        "4 classes: 4 guardrail (a_push: reachability uplift upper CI"
    )
    data = dataclasses.make_dataclass("Data", ["stages"])(stages=[stage.to_dict()])
    (alert,) = stage_health(data)  # type: ignore[arg-type]
    assert (alert.rule, alert.severity, alert.subject) == ("stage_warning", "warning", "weights")
    assert "no class has a positive weight" in alert.message
    # with the default limit some class is weighted above 0: ok
    assert stage_weights(Config(), str(db), "run-1", tmp_path / "w2").status == "ok"


def test_weeks_n_estimates_on_the_trailing_window(tmp_path, monkeypatch):
    """`upshot run --weeks 2 --week W44` reads the decisions of W43 and W44."""
    import upshot.attribution.uplift.frames as frames

    seen = []

    def record(con, config, path, *, start, end, **kwargs):
        seen.append((start.isoformat(), end.isoformat()))
        return 0  # no decisions: the stage stops here, saying where it looked

    monkeypatch.setattr(frames, "write_decision_frame", record)
    db = tmp_path / "upshot.duckdb"
    args = ("--db", str(db), "run", "--week", W2, "--no-load", "--json", "--fail-on", "never")
    result = run_cli(*args, "--weeks", "2", cwd=tmp_path)
    assert seen == [("2026-10-19T00:00:00+00:00", "2026-11-02T00:00:00+00:00")]
    stages = {s["stage"]: s for s in json.loads(result.out)["weeks"][0]["stages"]}
    assert stages["uplift"]["status"] == "skipped"
    assert stages["uplift"]["detail"] == f"no decisions in the 2 weeks to {W2}"
    seen.clear()
    run_cli(*args, cwd=tmp_path)
    assert seen == [("2026-10-26T00:00:00+00:00", "2026-11-02T00:00:00+00:00")]
    bad = run_cli(*args, "--weeks", "0", cwd=tmp_path)
    assert bad.code == 2
