"""`upshot experiments`: exact exit codes, one JSON document, the issue's flags and shape."""

from __future__ import annotations

import json
import shutil

import duckdb
import numpy as np
import polars as pl
import pytest

from tests.conftest import run_cli
from upshot.results import format_value

RESULT_KEYS = {
    "metric", "arm", "control", "treatment", "effect", "effect_se", "effect_ci_lower",
    "effect_ci_upper", "rel_effect", "pvalue", "pvalue_adj", "method", "status",
}  # fmt: skip


@pytest.fixture(scope="module")
def users_file(tmp_path_factory):
    rng = np.random.default_rng(21)
    n = 6000
    variant = rng.choice(["control", "treatment"], n)
    t = variant == "treatment"
    pre = rng.gamma(2.0, 30.0, n)
    sends = rng.poisson(5, n)
    opens = rng.binomial(sends, 0.2 + 0.04 * t)
    path = tmp_path_factory.mktemp("cli") / "users.parquet"
    pl.DataFrame(
        {
            "variant": variant,
            "converted": rng.random(n) < 0.05 + 0.02 * t,
            "minutes_streamed": pre * 0.7 + rng.gamma(2.0, 20.0, n) + 4 * t,
            "pre_minutes": pre,
            "clicks": opens,
            "sends": sends,
            "conversions": rng.binomial(opens, 0.1),
            "country": rng.choice(["US", "GB"], n),
            "frequency": rng.choice(["control", "high"], n),  # a second, independent test
        }
    ).write_parquet(path)
    return path


ISSUE_FLAGS = [
    "--variant-col", "variant", "--control", "control", "--metric", "converted",
    "--metric", "minutes_streamed", "--ratio", "clicks/sends",
    "--covariate", "minutes_streamed=pre_minutes", "--split", "control=0.5,treatment=0.5",
]  # fmt: skip


def test_analyze_table_json_has_the_issue_shape(users_file):
    r = run_cli("experiments", "analyze", "--table", str(users_file), *ISSUE_FLAGS, "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)  # exactly one document
    assert doc["experiment"] == "users"
    assert doc["run_id"] is None
    assert {"pvalue", "status"} <= set(doc["srm"])
    assert doc["srm"]["status"] == "ok"
    assert [(x["metric"], x["arm"]) for x in doc["results"]] == [
        ("converted", "treatment"),
        ("minutes_streamed", "treatment"),
        ("clicks/sends", "treatment"),
    ]
    for row in doc["results"]:
        assert set(row) >= RESULT_KEYS
    methods = {x["metric"]: x["method"] for x in doc["results"]}
    assert methods == {
        "converted": "proportion_z",
        "minutes_streamed": "cuped_welch_t",
        "clicks/sends": "delta_welch_t",
    }
    assert doc["results"][1]["variance_reduction"] > 0.3


def test_analyze_table_is_a_terminal_table_by_default(users_file):
    r = run_cli(
        "experiments", "analyze", "--table", str(users_file), *ISSUE_FLAGS, "--wide",
        env={"COLUMNS": "250"},
    )  # fmt: skip
    assert r.code == 0
    assert "cuped_welch_t" in r.out
    assert "sample ratio check" in r.out


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_analyze_rows_as_csv_and_ndjson(users_file, fmt):
    r = run_cli(
        "experiments",
        "analyze",
        "--table",
        str(users_file),
        "--metric",
        "converted",
        "--format",
        fmt,
    )
    assert r.code == 0
    if fmt == "csv":
        header, row = r.out.strip().splitlines()
        assert header.startswith("metric,arm,control,treatment")
        assert row.startswith("converted,treatment")
    else:
        assert json.loads(r.out)["metric"] == "converted"


def test_sequential_and_lin_options(users_file):
    r = run_cli(
        "experiments", "analyze", "--table", str(users_file), "--metric", "minutes_streamed",
        "--covariate", "minutes_streamed=pre_minutes", "--adjust", "lin", "--sequential",
        "--sequential-tuning", "6000", "--json",
    )  # fmt: skip
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["results"][0]["method"] == "lin_welch_t_sequential"
    assert doc["sequential"]["tuning"] == 6000


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--table", "missing.parquet", "--metric", "y"], 2, "no such file"),
        (["--table", "{file}", "--metric", "nope"], 1, "no column 'nope'"),
        (["--table", "{file}", "--metric", "converted", "--split", "a=1,b"], 2, "--split"),
        (["--table", "{file}", "--metric", "converted", "--alpha", "1.5"], 2, "alpha == 1.5"),
        (["--table", "{file}", "--covariate", "x=y", "--metric", "converted"], 2, "--covariate"),
        (["--table", "{file}"], 2, "no metrics"),
        (["--table", "{file}", "--metric", "converted", "--adjust", "magic"], 2, ""),
        (["--ratio", "a/b", "exp"], 2, "--table only"),
    ],
)
def test_bad_input_exits_with_the_right_code(users_file, args, code, message):
    args = [a.replace("{file}", str(users_file)) for a in args]
    r = run_cli("experiments", "analyze", *args)
    assert r.code == code, (r.out, r.err)
    assert message in r.err
    assert r.out == ""


def test_decide_exit_codes(users_file):
    base = ["experiments", "decide", "--table", str(users_file), "--metric", "converted"]
    ship = run_cli(*base, "--json")
    assert ship.code == 0
    assert json.loads(ship.out)["verdict"] == "ship"
    # a success metric that cannot win: no ship, still exit 0 ...
    flat = ["--metric", "pre_minutes"]
    r = run_cli("experiments", "decide", "--table", str(users_file), *flat, "--json")
    assert r.code == 0
    assert json.loads(r.out)["verdict"] == "no_ship"
    # ... unless asked to fail, with the document still on stdout
    r = run_cli(
        "experiments", "decide", "--table", str(users_file), *flat, "--fail-on-no-ship", "--json"
    )
    assert r.code == 5
    assert json.loads(r.out)["verdict"] == "no_ship"
    # a mismatched split is an invalid experiment
    r = run_cli(*base, "--split", "control=0.9,treatment=0.1", "--json")
    doc = json.loads(r.out)
    assert r.code == 0
    assert doc["verdict"] == "invalid"
    assert doc["srm"]["status"] == "srm"
    assert any("sample ratio mismatch" in q for q in doc["quality"])


def test_decide_guardrail_flags(users_file):
    r = run_cli(
        "experiments", "decide", "--table", str(users_file), "--metric", "converted",
        "--metric", "minutes_streamed", "--guardrail", "minutes_streamed=0.02", "--json",
    )  # fmt: skip
    doc = json.loads(r.out)
    roles = {m["metric"]: m["role"] for m in doc["arms"][0]["metrics"]}
    assert roles == {"converted": "success", "minutes_streamed": "guardrail"}
    assert doc["levels"] == {"success": 0.05, "guardrail": 0.05, "deterioration": 0.01}


def test_decompose_and_plan_on_a_table(users_file):
    r = run_cli(
        "experiments",
        "decompose",
        "--table",
        str(users_file),
        "--funnel",
        "sends,clicks,conversions",
        "--json",
    )
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    (d,) = doc["decompositions"]
    assert [s["step"] for s in d["steps"]] == [
        "sends per user",
        "clicks/sends",
        "conversions/clicks",
    ]
    assert sum(s["share"] for s in d["steps"]) == pytest.approx(1.0)
    r = run_cli(
        "experiments",
        "decompose",
        "--table",
        str(users_file),
        "--segment",
        "country",
        "--metric",
        "minutes_streamed",
        "--json",
    )
    assert r.code == 0
    assert json.loads(r.out)["kind"] == "shift_share"
    r = run_cli(
        "experiments", "plan", "--table", str(users_file), "--metric", "converted",
        "--mde", "converted=0.1", "--users", "50000", "--json",
    )  # fmt: skip
    assert r.code == 0, r.err
    plan = json.loads(r.out)
    assert plan["users_total"] > 0
    assert set(plan["users_per_arm"]) == {"control", "treatment"}
    r = run_cli("experiments", "decompose", "--table", str(users_file), "--funnel", "sends")
    assert r.code == 2
    assert "at least two steps" in r.err


def test_warehouse_commands_and_experiment_results(sim_warehouse, tmp_path):
    db = str(tmp_path / "copy.duckdb")
    shutil.copy(sim_warehouse[0], db)
    r = run_cli("--db", db, "experiments", "list", "--json")
    assert r.code == 0
    assert {e["experiment"] for e in json.loads(r.out)["experiments"]} == {
        "send_time_test", "frequency_test", "subject_line_test",
    }  # fmt: skip
    r = run_cli("--db", db, "experiments", "analyze", "frequency_test", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["run_id"]
    assert doc["source"] == "warehouse"
    r = run_cli("--db", db, "experiments", "decide", "subject_line_test", "--json")
    assert r.code == 0
    assert json.loads(r.out)["verdict"] == "no_ship"
    con = duckdb.connect(db, read_only=True)
    rows = con.execute(
        "SELECT experiment_id, count(*), count(verdict), bool_and(status IS NOT NULL) "
        "FROM experiment_results GROUP BY 1 ORDER BY 1"
    ).fetchall()
    runs = con.execute("SELECT command, status FROM runs ORDER BY started_at").fetchall()
    con.close()
    assert rows == [("frequency_test", 6, 0, True), ("subject_line_test", 12, 12, True)]
    assert runs == [("experiments analyze", "ok"), ("experiments decide", "ok")]
    r = run_cli("--db", db, "experiments", "analyze", "no_such_test")
    assert r.code == 2
    assert "no assignments" in r.err
    r = run_cli(
        "--db",
        db,
        "experiments",
        "analyze",
        "send_time_test",
        "--interaction",
        "frequency_test",
        "--no-save",
        "--json",
    )
    assert r.code == 0, r.err
    inter = json.loads(r.out)["interactions"]
    assert {i["metric"] for i in inter} >= {"minutes", "opens"}
    assert all(
        i["n_cells"] and i["status"] in ("ok", "zero_variance", "insufficient_data") for i in inter
    )


@pytest.mark.parametrize("command", ["list", "analyze", "decide", "decompose", "plan"])
def test_every_command_has_help(command):
    r = run_cli("experiments", command, "--help")
    assert r.code == 0
    assert "Usage" in r.out
    assert len(r.out) > 400


def test_interaction_with_a_column_of_the_table(users_file):
    r = run_cli(
        "experiments", "analyze", "--table", str(users_file), "--metric", "minutes_streamed",
        "--interaction", "frequency", "--other-control", "control", "--json",
    )  # fmt: skip
    assert r.code == 0, r.err
    (i,) = json.loads(r.out)["interactions"]
    assert (i["arm"], i["other"], i["other_arm"], i["status"]) == (
        "treatment", "frequency", "high", "ok",
    )  # fmt: skip
    assert sum(i["n_cells"]) == 6000
    assert i["effect_ci_lower"] < 0 < i["effect_ci_upper"]  # no interaction was planted


def test_analyze_table_is_compact_fits_100_columns_and_wide_shows_the_rest(users_file):
    args = ("experiments", "analyze", "--table", str(users_file), *ISSUE_FLAGS,
            "--interaction", "frequency")  # fmt: skip
    doc = json.loads(run_cli(*args, "--json").out)
    compact = run_cli(*args, env={"COLUMNS": "100"})
    assert compact.code == 0, compact.err
    lines = [x.rstrip() for x in compact.out.splitlines()]
    assert max(len(x) for x in lines) <= 100
    header = next(x for x in lines if " effect " in x)
    assert header.split() == ["metric", "┃", "arm", "┃", "effect", "┃", "ci", "┃", "p_adj", "┃",
                              "status"]  # fmt: skip
    # every row is the JSON's numbers, printed whole with significant digits (never cut)
    for r in doc["results"]:
        row = next(x for x in lines if x.lstrip().startswith(r["metric"] + " "))
        ci = f"[{format_value('', r['effect_ci_lower'])}, {format_value('', r['effect_ci_upper'])}]"
        assert [c.strip() for c in row.split("│")] == [
            r["metric"],
            r["arm"],
            format_value("effect", r["effect"]),
            ci,
            format_value("pvalue", r["pvalue_adj"]),
            r["status"],
        ]
        assert "…" not in row
        assert "e+" not in row
    inter = next(x for x in lines if "frequency=high" in x)
    assert inter.split("│")[2].strip() == "frequency=high"
    wide = run_cli(*args, "--wide")
    assert wide.code == 0, wide.err
    for column in ("control", "treatment", "rel_effect", "pvalue_adj", "method",
                   "n_missing_control", "effect_ci_lower", "other_arm"):  # fmt: skip
        assert f" {column} " in wide.out
    assert "…" not in wide.out
    # --json is the same document with or without --wide
    assert json.loads(run_cli(*args, "--wide", "--json").out)["results"] == doc["results"]


def test_analyze_of_the_warehouse_is_compact_too(sim_warehouse):
    db = str(sim_warehouse[0])
    r = run_cli("--db", db, "experiments", "analyze", "send_time_test", "--no-save")
    assert r.code == 0, r.err
    lines = [x.rstrip() for x in r.out.splitlines()]
    header = next(x for x in lines if " effect " in x)
    assert header.split() == ["metric", "┃", "arm", "┃", "effect", "┃", "ci", "┃", "p_adj", "┃",
                              "status"]  # fmt: skip
    assert max(len(x) for x in lines) <= 100
    assert "…" not in r.out


def test_python_decide_reads_the_config_the_cli_reads(users_file, tmp_path, monkeypatch):
    """One config: `decide(analyze(...))` in a folder gives the document `upshot
    experiments decide` prints there, whether the settings come from ./upshot.toml,
    from $UPSHOT_CONFIG or from the defaults."""
    from upshot.experiments import analyze, decide
    from upshot.results import dumps

    here, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    (here / "upshot.toml").write_text(
        "[experiments]\nmin_sample = 100000\ndeterioration_alpha = 0.2\n", encoding="utf-8"
    )
    flags = ("--table", str(users_file), "--metric", "converted", "--metric", "pre_minutes")

    def both(cwd, env):
        cli = run_cli("experiments", "decide", *flags, "--json", cwd=cwd, env=env)
        assert cli.code == 0, cli.err
        monkeypatch.chdir(cwd)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        verdict = decide(analyze(table=users_file, metrics=["converted", "pre_minutes"]))
        for key in env:
            monkeypatch.delenv(key)
        cli_doc = json.loads(cli.out)
        cli_doc.pop("run_id")
        return cli_doc, json.loads(dumps(verdict.to_document()))

    cli, python = both(here, {})
    assert python == cli
    assert python["verdict"] == "invalid"  # min_sample 100000 from ./upshot.toml
    assert python["levels"]["deterioration"] == 0.2
    assert any("100000" in q for q in python["quality"])
    cli, python = both(elsewhere, {"UPSHOT_CONFIG": str(here / "upshot.toml")})
    assert python == cli
    assert python["verdict"] == "invalid"
    cli, python = both(elsewhere, {})
    assert python == cli
    assert python["verdict"] == "ship"  # the defaults: min_sample 100, 0.01
    assert python["levels"]["deterioration"] == 0.01
    # an explicit argument still wins over the file
    monkeypatch.chdir(here)
    explicit = decide(analyze(table=users_file, metrics=["converted"]), min_sample=10)
    assert explicit.verdict == "ship"
