"""upshot.toml: defaults, validation messages that name the key."""

from __future__ import annotations

from importlib import resources

import pytest

from upshot.config import Config, load_config, parse_size, parse_window
from upshot.errors import ConfigError


def test_the_init_template_spells_out_exactly_the_defaults(tmp_path):
    text = resources.files("upshot.templates").joinpath("upshot.toml").read_text()
    (tmp_path / "upshot.toml").write_text(text)
    assert load_config(tmp_path / "upshot.toml").fingerprint() == Config().fingerprint()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[warehouse]\npaht = 'x'\n", "warehouse: unknown key 'paht'"),
        ("[load]\nmax_reject_rate = 'high'\n", "load.max_reject_rate == 'high', must be float"),
        ("[load]\nmax_reject_rate = 2.0\n", "load.max_reject_rate == 2.0, must be in [0, 1]"),
        (
            "[objectives.x]\nevents = ['e']\nwindow = '7 days'\n",
            "objectives.x.window == '7 days', must look like 7d, 12h or 2w",
        ),
        (
            "[objectives.x]\nevents = ['e']\naggregation = 'mean'\n",
            "objectives.x.aggregation == 'mean', must be one of any, sum, count, distinct_days",
        ),
        ("[experiments]\nalpha = 1.5\n", "experiments.alpha == 1.5, must be in (0, 1)"),
        (
            "[governance]\nrates = { conversion = 'a lot' }\n",
            "governance.rates.conversion == 'a lot', must be float",
        ),
        ("[warehouse\n", "upshot.toml: "),
        (
            "[uplift]\nmemory_per_task = '6 gigs'\n",
            "uplift.memory_per_task == '6 gigs', must look like 6GB, 512MB or 4GiB",
        ),
        (
            "[uplift]\nmemory_per_task = '0GB'\n",
            "uplift.memory_per_task == '0GB', must look like 6GB, 512MB or 4GiB",
        ),
    ],
)
def test_bad_config_names_the_key(tmp_path, toml, message):
    (tmp_path / "upshot.toml").write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "upshot.toml")
    assert message in str(caught.value)


def test_windows():
    assert parse_window("7d", "w") == 7
    assert parse_window("12h", "w") == 0.5
    assert parse_window("2w", "w") == 14


def test_a_missing_file_named_explicitly_is_an_error_and_none_means_defaults(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml")
    monkeypatch.chdir(tmp_path)
    assert load_config(None) == Config()


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("6GB", 6_000_000_000),  # decimal units, as DuckDB's memory_limit counts them
        ("512MiB", 512 * 2**20),
        ("1.5 GiB", 3 * 2**29),
        ("750kb", 750_000),
        ("2TB", 2 * 10**12),
    ],
)
def test_sizes_in_bytes(text, size):
    assert parse_size(text, "x") == size


def test_the_memory_budget_defaults_to_none(tmp_path):
    assert Config().uplift.memory_per_task_bytes == 0
    (tmp_path / "upshot.toml").write_text("[uplift]\nmemory_per_task = '6GB'\n")
    assert load_config(tmp_path / "upshot.toml").uplift.memory_per_task_bytes == 6 * 10**9


def test_init_writes_every_default_and_only_defaults(tmp_path):
    """Every key of every section is in the file `upshot init` writes (a key without a
    default value, such as uplift.ray_address, as a commented line), and reading the file
    gives exactly the defaults: a new setting cannot be forgotten in the template."""
    import dataclasses
    import re
    import tomllib

    from tests.conftest import run_cli
    from upshot.config import Config, load_config

    path = tmp_path / "upshot.toml"
    assert run_cli("init", str(path)).code == 0
    text = path.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    defaults = Config()
    missing = []
    for section in ("warehouse", "engine", "load", "experiments", "uplift", "governance", "report"):
        for f in dataclasses.fields(getattr(defaults, section)):
            written = f.name in data.get(section, {})
            commented = re.search(rf"^#\s*{f.name}[\s.=]", text, re.MULTILINE)
            if not written and not commented:
                missing.append(f"{section}.{f.name}")
    assert missing == []
    assert set(data) == {f.name for f in dataclasses.fields(Config)} - {"source"}
    assert set(data["objectives"]) == set(defaults.objectives)
    assert dataclasses.replace(load_config(path), source=None) == defaults


def test_upshot_config_names_the_file_and_the_flag_beats_it(tmp_path, monkeypatch):
    from upshot.config import load_config

    env_file = tmp_path / "env.toml"
    env_file.write_text('[experiments]\ncontrol = "base"\n')
    flag_file = tmp_path / "flag.toml"
    flag_file.write_text('[experiments]\ncontrol = "holdout"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("UPSHOT_CONFIG", str(env_file))
    assert load_config().experiments.control == "base"
    assert load_config(flag_file).experiments.control == "holdout"
    monkeypatch.setenv("UPSHOT_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match=r"missing\.toml: no such config file"):
        load_config()


def test_the_python_api_reads_the_config_the_cli_reads(tmp_path, monkeypatch):
    """The same analysis from Python and from the CLI, both from ./upshot.toml (its
    control arm is `base`), gives the same effect."""
    import json

    import numpy as np
    import polars as pl

    from tests.conftest import run_cli
    from upshot.experiments import analyze

    rng = np.random.default_rng(1)
    arm = np.where(np.arange(400) % 2 == 0, "base", "new")
    minutes = rng.normal(10, 2, 400) + (arm == "new") * 0.8
    pl.DataFrame({"variant": arm, "minutes": minutes}).write_csv(tmp_path / "t.csv")
    (tmp_path / "upshot.toml").write_text('[experiments]\ncontrol = "base"\nalpha = 0.1\n')
    monkeypatch.delenv("UPSHOT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    python = analyze(table="t.csv", metrics=["minutes"])
    cli = json.loads(run_cli("experiments", "analyze", "--table", "t.csv", "--metric",
                             "minutes", "--json").out)  # fmt: skip
    assert cli["control_arm"] == "base"
    (row,) = python.to_dicts()
    assert row["arm"] == "new"
    assert row["effect"] == cli["results"][0]["effect"]
    assert row["effect_ci_lower"] == cli["results"][0]["effect_ci_lower"]
    assert cli["alpha"] == 0.1


def test_the_uplift_pre_window_defaults_to_28_days_and_0d_turns_it_off(tmp_path):
    assert Config().uplift.pre_window_days == 28.0
    (tmp_path / "upshot.toml").write_text("[uplift]\npre_window = '0d'\n")
    assert load_config(tmp_path / "upshot.toml").uplift.pre_window_days == 0.0
    (tmp_path / "upshot.toml").write_text("[uplift]\npre_window = '4 weeks'\n")
    with pytest.raises(ConfigError, match=r"uplift\.pre_window == '4 weeks', must look like 7d"):
        load_config(tmp_path / "upshot.toml")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "[longterm.outcomes.retention]\nevents = ['active_day']\nwindow = '180d'\n",
            "longterm.outcomes.retention: an objective has that name; rename it",
        ),
        (
            "[longterm]\nsurrogates = ['streams']\n",
            (
                "longterm.surrogates: 'streams' is not an objective (objectives: "
                "conversion, engagement, retention, reachability)"
            ),
        ),
        (
            "[longterm.outcomes.r6]\nevents = ['active_day']\nwindow = '6 months'\n",
            "longterm.outcomes.r6.window == '6 months', must look like 7d, 12h or 2w",
        ),
        ("[longterm]\nhistory = '0w'\n", "longterm.history == '0w', must be > 0"),
        ("[longterm]\nfolds = 1\n", "longterm.folds == 1, must be >= 2"),
        (
            "[longterm.primary]\nretention_180d = 'streams'\n",
            (
                "longterm.primary.retention_180d == 'streams', must be a surrogate "
                "(conversion, engagement, retention, reachability)"
            ),
        ),
        (
            "[longterm.primary]\nltv = 'retention'\n",
            "longterm.primary.ltv: not a longterm outcome",
        ),
    ],
)
def test_longterm_settings_are_checked(tmp_path, toml, message):
    (tmp_path / "upshot.toml").write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "upshot.toml")
    assert str(err.value) == message


def test_longterm_defaults_are_the_issue_outcomes():
    lt = Config().longterm
    assert lt.outcomes["retention_180d"].events == ("active_day",)
    assert lt.outcomes["retention_180d"].aggregation == "distinct_days"
    assert lt.outcomes["subscribed_180d"].aggregation == "any"
    assert lt.horizon_days == 180.0
    assert lt.history_days == 364.0


def test_the_primary_surrogate_of_each_longterm_outcome(tmp_path):
    # unnamed: the objective counting the same events, else the first surrogate
    config = Config()
    lt, objectives = config.longterm, config.objectives
    assert lt.primary_of("retention_180d", objectives) == "retention"
    assert lt.primary_of("subscribed_180d", objectives) == "conversion"
    (tmp_path / "upshot.toml").write_text(
        "[longterm]\nsurrogates = ['engagement', 'retention']\n"
        "[longterm.primary]\nretention_180d = 'engagement'\n"
    )
    config = load_config(tmp_path / "upshot.toml")
    named = {n: config.objectives[n] for n in config.longterm.surrogates}
    assert config.longterm.primary_of("retention_180d", named) == "engagement"
    assert config.longterm.primary_of("subscribed_180d", named) == "engagement"
