"""`upshot --engine spark --lake DIR uplift` against `--engine duckdb` on the same lake: the
same document, and a lake Spark would read differently from DuckDB's checked views is
refused rather than estimated."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow

WEEK = "2026-W43"
CLASS = "promo_blast_push"
# run metadata and wall-clock seconds differ by nature; every estimate must not
VOLATILE = {"run_id", "seconds"}


def _same(got, want, path=""):
    if isinstance(want, dict):
        assert set(got) == set(want), path
        for key in want:
            if key not in VOLATILE:
                _same(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _same(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and not math.isnan(want):
        # the frames are equal bit for bit (exact decimal sums, one covariate order); 1e-9
        # leaves room only for the last bits of the estimators' own arithmetic
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), (path, got, want)
    elif isinstance(want, float):
        assert isinstance(got, float), path
        assert math.isnan(got), path
    else:
        assert got == want, (path, got, want)


def _uplift(engine: str, root: Path, db: Path):
    return run_cli(
        "--engine", engine, "--lake", str(root), "--db", str(db),
        "uplift", "--week", WEEK, "--class", CLASS, "--json",
    )  # fmt: skip


def test_spark_uplift_on_a_lake_prints_duckdbs_document(spark_session, lake, tmp_path):
    root = Path(lake["sends"]).parent
    duck = _uplift("duckdb", root, tmp_path / "duck.duckdb")
    spark = _uplift("spark", root, tmp_path / "spark.duckdb")
    assert duck.code == 0, duck.err
    assert spark.code == 0, spark.err
    want, got = json.loads(duck.out), json.loads(spark.out)
    rows = [e for e in want["estimates"] if e["segment"] == "all"]
    assert len(rows) == 4
    assert all(e["status"] == "ok" for e in rows)
    _same(got, want)


def test_a_lake_with_a_repeated_user_is_refused_on_spark(spark_session, lake, tmp_path):
    root = tmp_path / "lake"
    shutil.copytree(Path(lake["sends"]).parent, root)
    users = root / "users" / "part-0.parquet"
    frame = pl.read_parquet(users)
    pl.concat([frame, frame.head(3)]).write_parquet(users)  # three users twice
    result = _uplift("spark", root, tmp_path / "spark.duckdb")
    assert result.code == 3, result.err
    assert result.err.startswith(f"Error: {root}: users: 3 rows with a repeated key;")
    # DuckDB's lake views keep the first row of a repeated key, as `load` does
    assert _uplift("duckdb", root, tmp_path / "duck.duckdb").code == 0
