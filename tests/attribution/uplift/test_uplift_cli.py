"""`upshot uplift`: the flat-table path, the warehouse path, exit codes and the JSON document."""

from __future__ import annotations

import json
import math

import duckdb
import polars as pl
import pytest

from tests.attribution.uplift.uplift_world import load_world, make_decisions
from tests.conftest import run_cli
from upshot import store

REQUIRED = {
    "message_class", "objective", "segment", "ate", "ate_ci_lower", "ate_ci_upper",
    "naive_effect", "n_treated", "n_control", "estimator", "status",
}  # fmt: skip


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
    frame, truth = make_decisions(1200, seed=9)
    path = tmp_path_factory.mktemp("flat") / "decisions.csv"
    frame.rename({"treated": "treatment"}).with_columns(
        pl.col("treatment").cast(pl.Int8)
    ).write_csv(path)
    return path, truth


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    from upshot.simulate import make_world

    world = make_world(users=1500, weeks=2, seed=4)
    path = tmp_path_factory.mktemp("wh") / "upshot.duckdb"
    con = store.connect(str(path), read_only=False)
    load_world(con, world)
    con.close()
    return str(path), world


def test_table_path_prints_one_json_document(flat):
    path, _ = flat
    result = run_cli(
        "uplift", "--table", str(path), "--class-col", "message_class", "--treatment-col",
        "treatment", "--outcome-col", "conversion", "--outcome-col", "engagement",
        "--covariates", "activity,tenure_years,product_tier,platform", "--propensity-col",
        "propensity", "--nuisance", "linear", "--no-refute", "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    document = json.loads(result.out)
    assert set(document) >= {"run_id", "estimates", "covariance", "classes"}
    rows = document["estimates"]
    assert set(rows[0]) >= REQUIRED
    overall = [r for r in rows if r["segment"] == "all"]
    assert {(r["message_class"], r["objective"]) for r in overall} == {
        (c, o) for c in ("banner", "digest_email", "promo_push", "quiet_push")
        for o in ("conversion", "engagement")
    }  # fmt: skip
    assert all(r["status"] == "ok" and r["estimator"] == "linear_dml" for r in overall)
    # issue 13: how the estimates are made, and the overlap of each row's decisions
    assert document["method"] == "dr_score_mean"
    assert {r["method"] for r in rows if r["status"] == "ok"} == {"dr_score_mean"}
    assert all(0 <= r["clipped_share"] <= 1 for r in rows)
    assert {r["design"] for r in overall} == {"logged_propensity", "estimated_propensity"}
    assert any(r["segment"].startswith("country=") for r in rows)
    assert "[4/4]" in result.err  # progress per class on stderr


def test_table_path_table_format_and_csv(flat):
    path, _ = flat
    base = ("uplift", "--table", str(path), "--outcome-col", "engagement", "--covariates",
            "activity", "--nuisance", "linear", "--no-refute", "--class", "promo_push")  # fmt: skip
    table = run_cli(*base)
    assert table.code == 0, table.err
    assert "promo_push" in table.out
    assert " naive " in table.out  # the compact table; --wide has every column
    wide = run_cli(*base, "--wide").out
    assert "naive_effect" in wide
    assert "clipped_share" in wide
    csv = run_cli(*base, "--format", "csv")
    assert csv.code == 0
    parsed = pl.read_csv(csv.out.encode())
    assert set(parsed["segment"]) >= {"all", "country=US"}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--outcome-col", "nope"), 2, "no column 'nope'"),
        ((), 2, "needs at least one --outcome-col"),
        (("--outcome-col", "engagement", "--week", "2026-W47"), 2, "not with --table"),
        (("--outcome-col", "engagement", "--treatment-col", "country"), 1, "must be 0/1"),
        (("--outcome-col", "engagement", "--estimator", "magic"), 2, "magic"),
        (("--outcome-col", "engagement", "--objective", "conversion"), 2, "use --outcome-col"),
        (("--outcome-col", "engagement", "--class", "nope"), 2, "no decisions of class 'nope'"),
    ],
)
def test_table_path_errors(flat, args, code, message):
    path, _ = flat
    result = run_cli("uplift", "--table", str(path), "--treatment-col", "treatment", *args)
    assert result.code == code
    assert message in result.err


def test_table_path_names_the_bad_row(tmp_path):
    path = tmp_path / "bad.csv"
    frame, _ = make_decisions(300, seed=1)
    frame = frame.with_columns(pl.col("treated").cast(pl.Int8)).with_row_index()
    frame = frame.with_columns(
        pl.when(pl.col("index") == 6).then(2).otherwise(pl.col("treated")).alias("treated")
    ).drop("index")
    frame.write_csv(path)
    result = run_cli(
        "uplift", "--table", str(path), "--treatment-col", "treated", "--outcome-col", "engagement"
    )
    assert result.code == 1
    assert f"{path} row 7: treated must be 0/1 or true/false" in result.err


def test_warehouse_path_writes_estimates_with_run_id_and_week(warehouse):
    db, _world = warehouse
    result = run_cli(
        "--db", db, "uplift", "--week", "2026-W43", "--class", "promo_blast_push", "--class",
        "sports_alert_push", "--objective", "engagement", "--objective", "reachability",
        "--nuisance", "linear", "--no-refute", "--seed", "3", "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    document = json.loads(result.out)
    run_id = document["run_id"]
    assert document["week"] == "2026-W43"
    con = duckdb.connect(db, read_only=True)
    try:
        stored = con.sql(
            "SELECT * FROM uplift_estimates WHERE run_id = $r", params={"r": run_id}
        ).pl()
        covariance = con.sql(
            "SELECT * FROM uplift_covariance WHERE run_id = $r", params={"r": run_id}
        ).pl()
        run = con.execute(
            "SELECT status, command, seed FROM runs WHERE run_id = ?", [run_id]
        ).fetchone()
    finally:
        con.close()
    assert run == ("ok", "uplift", 3)
    assert stored.height == len(document["estimates"])
    assert set(stored["week"]) == {"2026-W43"}
    assert set(stored["message_class"]) == {"promo_blast_push", "sports_alert_push"}
    assert set(stored["channel"]) == {"push"}
    overall = stored.filter(pl.col("segment") == "all")
    assert overall.height == 4
    assert set(overall["status"]) == {"ok"}
    promo = overall.filter(
        (pl.col("message_class") == "promo_blast_push") & (pl.col("objective") == "reachability")
    ).row(0, named=True)
    assert promo["ate_ci_lower"] > 0  # the planted harm to reachability shows
    assert promo["seed"] == 3
    assert promo["nuisance"] == "linear"
    assert promo["design"] == "logged_propensity"
    assert json.loads(promo["details"])["clipped_share"] == 0.0
    assert promo["clipped_share"] == 0.0
    assert promo["method"] == "dr_score_mean"
    small = stored.filter(pl.col("status") == "insufficient_data")
    assert all(math.isnan(v) for v in small["ate"])
    pairs = covariance.filter(
        (pl.col("message_class") == "promo_blast_push") & (pl.col("segment") == "all")
    )
    assert pairs.height == 4  # 2 objectives: the full 2 x 2 matrix
    variance = pairs.filter(pl.col("objective_a") == pl.col("objective_b"))
    assert sorted(variance["covariance"]) == pytest.approx(
        sorted(overall.filter(pl.col("message_class") == "promo_blast_push")["ate_se"] ** 2)
    )


def test_warehouse_path_errors(warehouse, tmp_path):
    db, _ = warehouse
    assert run_cli("--db", db, "uplift", "--week", "2026-W43", "--start", "2026-10-19").code == 2
    empty = run_cli("--db", db, "uplift", "--week", "2030-W01", "--no-refute")
    assert empty.code == 2
    assert "no send decisions" in empty.err
    missing = run_cli("--db", str(tmp_path / "none.duckdb"), "uplift")
    assert missing.code == 2
    assert "no warehouse here yet" in missing.err
    bad = run_cli("--db", db, "uplift", "--objective", "clicks")
    assert bad.code == 2
    assert "'clicks' is not configured" in bad.err
    unknown = run_cli("--db", db, "uplift", "--class", "promo_blast_push", "--class", "nope")
    assert unknown.code == 2
    assert "no send decisions of class 'nope'" in unknown.err


def test_a_class_without_holdout_gets_no_holdout_and_what_to_log(flat, tmp_path):
    path, _ = flat
    frame = pl.read_csv(path).filter(pl.col("message_class").is_in(["banner", "promo_push"]))
    sent = frame.with_columns(
        pl.when(pl.col("message_class") == "banner").then(1).otherwise(pl.col("treatment"))
        .alias("treatment")
    )  # fmt: skip
    sent.write_csv(tmp_path / "sent.csv")
    result = run_cli(
        "uplift", "--table", str(tmp_path / "sent.csv"), "--outcome-col", "engagement",
        "--covariates", "activity", "--nuisance", "linear", "--no-refute", "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    rows = {r["message_class"]: r for r in json.loads(result.out)["estimates"]}
    assert rows["banner"]["status"] == "no_holdout"
    assert rows["banner"]["ate"] is None
    assert rows["banner"]["n_control"] == 0
    assert rows["promo_push"]["status"] == "ok"
    assert "banner: 1,200 decisions, -, no_holdout (" in result.err
    assert "): no hold-out decisions: log every eligible decision" in result.err


def test_estimate_uplift_reads_the_config_the_cli_reads(flat, tmp_path, monkeypatch):
    """`[uplift] min_decisions` above every class's 1,200 decisions in ./upshot.toml: the
    CLI and `estimate_uplift` with no settings both report insufficient_data (the
    defaults, min_decisions 200, would fit every class)."""
    from upshot.attribution import estimate_uplift

    path, _ = flat
    (tmp_path / "upshot.toml").write_text("[uplift]\nmin_decisions = 5000\n", encoding="utf-8")
    cli = run_cli("uplift", "--table", str(path), "--treatment-col", "treatment",
                  "--outcome-col", "engagement", "--no-refute", "--json", cwd=tmp_path)  # fmt: skip
    assert cli.code == 0, cli.err
    monkeypatch.chdir(tmp_path)
    frame = pl.read_csv(path)
    python = estimate_uplift(frame, outcomes=["engagement"], treatment_col="treatment",
                             refute=False)  # fmt: skip
    by_cli = {e["message_class"]: e["status"] for e in json.loads(cli.out)["estimates"]
              if e["segment"] == "all"}  # fmt: skip
    by_python = {r["message_class"]: r["status"] for r in python.to_dicts()
                 if r["segment"] == "all"}  # fmt: skip
    assert by_python == by_cli
    assert set(by_cli.values()) == {"insufficient_data"}


def test_a_table_without_a_class_column_is_one_class(flat, tmp_path):
    """A single campaign's table (no message_class): every decision is one class, `all`,
    with the numbers the same rows get as a named class; a --class-col that is not there
    is still an error."""
    path, _ = flat
    rows = pl.read_csv(path).filter(pl.col("message_class") == "promo_push")
    named, bare = tmp_path / "named.csv", tmp_path / "bare.csv"
    rows.write_csv(named)
    rows.drop("message_class").write_csv(bare)
    args = ("--treatment-col", "treatment", "--outcome-col", "engagement", "--covariates",
            "activity,tenure_years", "--nuisance", "linear", "--no-refute", "--json")  # fmt: skip
    want = run_cli("uplift", "--table", str(named), *args)
    got = run_cli("uplift", "--table", str(bare), *args)
    assert got.code == want.code == 0, got.err
    assert "no message_class column: every decision is one class, 'all'" in got.err
    w, g = (json.loads(r.out)["estimates"] for r in (want, got))
    assert {r["message_class"] for r in w} == {"promo_push"}
    assert {r["message_class"] for r in g} == {"all"}
    drop = ("message_class", "run_id")
    assert [{k: v for k, v in r.items() if k not in drop} for r in g] == [
        {k: v for k, v in r.items() if k not in drop} for r in w
    ]
    missing = run_cli("uplift", "--table", str(bare), "--class-col", "campaign", *args)
    assert missing.code == 2
    assert "no column 'campaign' for the class" in missing.err


def test_a_numeric_covariate_with_r_missing_values_stays_numeric(flat, tmp_path):
    """R writes a missing number as NA; polars would read the column as text and one-hot
    its 20 most frequent values. It is read as the number column with empty cells is."""
    path, _ = flat
    rows = pl.read_csv(path).filter(pl.col("message_class") == "promo_push")
    gaps = pl.int_range(pl.len()) % 50 == 7
    text = pl.col("activity").cast(pl.String)
    empty, r_style = tmp_path / "empty.csv", tmp_path / "r.csv"
    rows.with_columns(pl.when(gaps).then(None).otherwise("activity").alias("activity")).write_csv(
        empty
    )
    rows.with_columns(pl.when(gaps).then(pl.lit("NA")).otherwise(text).alias("activity")).write_csv(
        r_style
    )
    args = ("--treatment-col", "treatment", "--outcome-col", "engagement", "--covariates",
            "activity,tenure_years", "--nuisance", "linear", "--no-refute", "--json")  # fmt: skip
    want, got = (run_cli("uplift", "--table", str(p), *args) for p in (empty, r_style))
    assert want.code == got.code == 0, got.err
    assert (
        f"{r_style}: column 'activity': 24 NA read as missing" in got.err
    )  # 1,200 rows, one in 50
    drop = ("run_id",)
    assert [
        {k: v for k, v in r.items() if k not in drop} for r in json.loads(got.out)["estimates"]
    ] == [{k: v for k, v in r.items() if k not in drop} for r in json.loads(want.out)["estimates"]]


def test_only_a_column_of_numbers_and_missing_spellings_becomes_numeric():
    from upshot.cli.common import numbers_with_missing

    frame = pl.DataFrame(
        {
            "x": ["1.5", "NA", " 2 ", "N/A", None],
            "country": ["US", "NA", "FR", "US", "DE"],  # Namibia: text stays text
            "all_na": ["NA", "NA", "NA", "NA", "NA"],  # nothing says it is a number
        }
    )
    got = numbers_with_missing(frame, "f.csv")
    assert got.get_column("x").to_list() == [1.5, None, 2.0, None, None]
    assert got.get_column("country").to_list() == frame.get_column("country").to_list()
    assert got.get_column("all_na").dtype == pl.String
