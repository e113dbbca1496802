"""Lake mode gives a loaded warehouse's numbers: a simulated world is loaded, exported to
a lake (`upshot lake export`), and every downstream command run both ways, the lake side
on a fresh empty warehouse file.

Numbers agree to 1e-9 relative (|a - b| <= 1e-9 * max(1, |a|)): both sides run the same
SQL over the same rows, but DuckDB's parallel aggregation sums in an order that depends
on how the rows are laid out (a table vs Parquet files), which moves the last digits
(seen: 2e-16 relative on an experiment's means).
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from tests.conftest import run_cli
from upshot.simulate import simulate

WEEK = "2026-W43"
# fields that name a run, a time or a place, not a number of the data
VOLATILE = {
    "run_id",
    "uplift_run_id",
    "touches_run_id",
    "seconds",
    "started_at",
    "finished_at",
    "data_as_of",
    "created_at",
    "generated_at",
    "path",
    "report",
    "reports",
    "weights_version",
    "version",
    "directory",
    "db",
    "experiment_runs",
    "files",
    "index",
}
CHEAP = """[uplift]
nuisance = "linear"
folds = 2
refute_sample = 500
refute_simulations = 2
segments = ["country"]
"""


def _same(a: Any, b: Any, where: str = "") -> list[str]:
    """Where `a` and `b` differ (beyond the tolerance of the module docstring)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{where}.{k}: one side only" for k in set(a) ^ set(b) if k not in VOLATILE]
        for k in set(a) & set(b):
            if k not in VOLATILE:
                out += _same(a[k], b[k], f"{where}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} vs {len(b)} items"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _same(x, y, f"{where}[{i}]")
        ]
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return []
        return [] if abs(a - b) <= 1e-9 * max(1.0, abs(a)) else [f"{where}: {a!r} vs {b!r}"]
    return [] if a == b else [f"{where}: {a!r} vs {b!r}"]


@pytest.fixture(scope="module")
def sides(tmp_path_factory):
    root = tmp_path_factory.mktemp("lake_equivalence")
    simulate(root / "world", users=1500, weeks=1, seed=5)
    (root / "upshot.toml").write_text(CHEAP, encoding="utf-8")
    loaded = str(root / "loaded.duckdb")
    for table in ("users", "assignments", "sends", "outcomes"):
        source = (
            root / "world" / (f"{table}.parquet" if table in ("users", "assignments") else table)
        )
        result = run_cli("--db", loaded, "load", table, str(source), cwd=root)
        assert result.code == 0, result.err
    exported = run_cli("--db", loaded, "lake", "export", str(root / "lake"), cwd=root)
    assert exported.code == 0, exported.err
    return {
        "root": root,
        "warehouse": ("--db", loaded),
        "lake": ("--db", str(root / "fresh.duckdb"), "--lake", str(root / "lake")),
        # the simulated files themselves: sends/date=D/channel=C/ (channel only in the
        # folder name), outcomes/date=D/, users.parquet and assignments.parquet beside them
        "world": ("--db", str(root / "world.duckdb"), "--lake", str(root / "world")),
    }


def _both(sides, *args: str, lake: str = "lake") -> tuple[dict[str, Any], dict[str, Any]]:
    out = []
    for side in ("warehouse", lake):
        result = run_cli(
            *sides[side], *[a.replace("{side}", side) for a in args], cwd=sides["root"]
        )
        assert result.code == 0, (side, result.err)
        out.append(json.loads(result.out))
    return out[0], out[1]


def test_the_export_is_partitioned_by_iso_week(sides):
    weeks = sorted(p.name for p in (sides["root"] / "lake" / "sends").iterdir())
    assert weeks == [f"week={WEEK}"]
    assert (sides["root"] / "lake" / "users" / "users.parquet").is_file()


def test_uplift_is_the_same(sides):
    a, b = _both(sides, "uplift", "--week", WEEK, "--class", "new_release_push", "--json")
    assert a["estimates"], a
    assert any(e["segment"] != "all" for e in a["estimates"])  # the users covariates join
    assert not (diff := _same(a, b)), "\n".join(diff)


def test_experiments_analyze_is_the_same(sides):
    a, b = _both(sides, "experiments", "analyze", "send_time_test", "--json")
    assert not (diff := _same(a, b)), "\n".join(diff)


def test_touches_are_the_same(sides):
    a, b = _both(sides, "touches", "--week", WEEK, "--json")
    assert not (diff := _same(a, b)), "\n".join(diff)


def test_the_simulated_files_read_as_a_lake_give_the_same_numbers(sides):
    """The world as `simulate` wrote it, read in place: the channel comes from the folder
    names, users and assignments from one file each."""
    a, b = _both(sides, "touches", "--week", WEEK, "--json", lake="world")
    # `causal` sets beside the credits the uplift estimates each warehouse file holds:
    # this side's new file has none, whatever the other tests stored on the loaded one
    for key in ("causal", "causal_source"):
        a.pop(key)
        b.pop(key)
    assert _same(a, b) == []
    a, b = _both(sides, "experiments", "analyze", "send_time_test", "--json", lake="world")
    assert _same(a, b) == []


def test_check_is_the_same_but_for_the_lake_finding(sides):
    a, b = _both(sides, "check", "--json")
    lake = b["checks"].pop(0)
    assert lake["name"] == "lake"
    assert lake["status"] == "ok"
    assert {t: c["rejected"] for t, c in lake["tables"].items()} == dict.fromkeys(
        ("sends", "outcomes", "users", "assignments"), 0
    )
    (zones_a,) = [c for c in a["checks"] if c["name"] == "timestamps"]
    (zones_b,) = [c for c in b["checks"] if c["name"] == "timestamps"]
    assert zones_a["count"] == zones_b["count"] == 0
    a["checks"] = [c for c in a["checks"] if c["name"] != "timestamps"]
    b["checks"] = [c for c in b["checks"] if c["name"] != "timestamps"]
    assert not (diff := _same(a, b)), "\n".join(diff)


@pytest.mark.slow
def test_run_and_report_weekly_are_the_same(sides):
    dirs = ("--reports", "{side}/reports", "--weights-dir", "{side}/weights")
    a, b = _both(sides, "run", "--week", WEEK, "--no-load", *dirs, "--fail-on", "never", "--json")
    (check,) = [s for s in b["weeks"][0]["stages"] if s["stage"] == "check"]
    # the lake side checks one thing more: the lake's rows against the contract
    lake = [
        c
        for c in check["outputs"]["checks"]
        if (c.get("name") if isinstance(c, dict) else c) == "lake"
    ]
    assert len(lake) == 1, check
    check["outputs"]["checks"].remove(lake[0])
    check["attempted"] -= 1
    for doc, side in ((a, "warehouse"), (b, "lake")):
        for stage in doc["weeks"][0]["stages"]:
            stage["detail"] = (stage.get("detail") or "").replace(side + "/", "")
        # the same count, said of a load journal on one side and of the lake on the other
        for found in doc["weeks"][0]["stages"][1]["outputs"]["checks"]:
            if found.get("name") == "timestamps":
                assert found.pop("detail").startswith("every timestamp")
    assert not (diff := _same(a, b)), "\n".join(diff)
    ra, rb = _both(sides, "report", "weekly", "--week", WEEK, "--out", "{side}/again",
                   "--weights-dir", "{side}/weights", "--json")  # fmt: skip
    assert not (diff := _same(ra, rb)), "\n".join(diff)
