"""Errors name what exists: an unknown experiment, class or objective lists the known
ones; --start after --end is a usage error (exit 2) on every command that takes them."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli
from upshot.config import Config
from upshot.errors import EXIT_USAGE
from upshot.load import load
from upshot.simulate import make_world


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    root = tmp_path_factory.mktemp("errors")
    world = make_world(users=300, weeks=1, seed=2)
    path = str(root / "w.duckdb")
    for table in ("users", "assignments", "sends", "outcomes"):
        getattr(world, table).write_parquet(root / f"{table}.parquet")
        load(path, table, [str(root / f"{table}.parquet")], config=Config())
    return path


def test_an_unknown_experiment_lists_the_known_ones(db):
    for args in (
        ["experiments", "analyze", "nope"],
        ["experiments", "decide", "nope"],
        ["experiments", "analyze", "send_time_test", "--interaction", "nope"],
    ):
        result = run_cli("--db", db, *args)
        assert result.code == EXIT_USAGE, (args, result.err)
        assert "'nope' has no assignments in the warehouse (known: frequency_test, " in result.err
        assert "send_time_test, subject_line_test)" in result.err


def test_an_unknown_class_or_objective_lists_the_known_ones(db):
    result = run_cli("--db", db, "uplift", "--class", "nope", "--week", "2026-W43")
    assert result.code == EXIT_USAGE
    assert "no send decisions for the classes and period asked (classes: " in result.err
    assert "promo_blast_push" in result.err
    result = run_cli("--db", db, "uplift", "--objective", "nope", "--week", "2026-W43")
    assert result.code == EXIT_USAGE
    assert result.err == (
        "Error: objective 'nope' is not configured "
        "(known: conversion, engagement, retention, reachability)\n"
    )


@pytest.mark.parametrize(
    "command", [["uplift"], ["touches"], ["weights", "evaluate"]], ids=lambda c: c[-1]
)
def test_start_after_end_is_a_usage_error(db, command):
    result = run_cli("--db", db, *command, "--start", "2026-11-01", "--end", "2026-10-01")
    assert result.code == EXIT_USAGE
    assert result.err == "Error: --end == '2026-10-01', must be after --start '2026-11-01'\n"
