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


def test_the_uplift_pre_window_defaults_to_28_days_and_0d_turns_it_off(tmp_path):
    assert Config().uplift.pre_window_days == 28.0
    (tmp_path / "upshot.toml").write_text("[uplift]\npre_window = '0d'\n")
    assert load_config(tmp_path / "upshot.toml").uplift.pre_window_days == 0.0
    (tmp_path / "upshot.toml").write_text("[uplift]\npre_window = '4 weeks'\n")
    with pytest.raises(ConfigError, match=r"uplift\.pre_window == '4 weeks', must look like 7d"):
        load_config(tmp_path / "upshot.toml")
