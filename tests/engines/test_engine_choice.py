"""Choosing the engine: the flag, the config, bad values, and DuckDB's path untouched
(no Spark is started here; test_spark.py runs the Spark passes)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT, run_cli


def test_unknown_engine_is_a_usage_error(tmp_path):
    result = run_cli("--engine", "flink", "status", cwd=tmp_path)
    assert result.code == 2
    assert result.err == "Error: --engine flink: must be one of duckdb, spark\n"


def test_spark_flag_on_a_command_without_a_spark_pass_is_refused(tmp_path):
    result = run_cli("--engine", "spark", "touches", "--help", cwd=tmp_path)
    assert result.code == 0  # help never fails
    result = run_cli("--engine", "spark", "status", cwd=tmp_path)
    assert result.code == 2
    assert result.err.startswith("Error: --engine spark: `upshot status` runs on DuckDB only")
    assert "(on spark: check, experiments, touches, uplift;" in result.err


def test_spark_touches_passes_the_guard_and_asks_for_a_lake(tmp_path):
    """`touches` has a Spark pass now: the guard lets it through, and without a lake it
    says what it reads (no JVM is started for either refusal)."""
    result = run_cli("--engine", "spark", "touches", "--week", "2026-W43", cwd=tmp_path)
    assert result.code == 2
    assert result.err == (
        "Error: --engine spark: touches reads the contract tables in place; give --lake DIR "
        "(`upshot lake export DIR` writes a loaded warehouse there)\n"
    )


def test_config_engine_kind_is_checked(tmp_path):
    (tmp_path / "upshot.toml").write_text('[engine]\nkind = "flink"\n', encoding="utf-8")
    result = run_cli("status", cwd=tmp_path)
    assert result.code == 2
    assert "engine.kind == 'flink', must be one of duckdb, spark" in result.err


def test_duckdb_engine_imports_neither_pyspark_nor_sqlglot(tmp_path):
    """The default path stays as it was: the analysis runs without loading either."""
    import polars as pl

    pl.DataFrame(
        {"variant": ["control", "t"] * 50, "y": [float(i % 7) for i in range(100)]}
    ).write_parquet(tmp_path / "f.parquet")
    code = (
        "import sys\n"
        "from upshot.cli import main\n"
        "try:\n"
        "    main(['experiments', 'analyze', '--table', 'f.parquet', '--control', 'control',"
        " '--metric', 'y', '--no-save', '--json'])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "roots = {m.split('.')[0] for m in sys.modules}\n"
        "print('LOADED', sorted(roots & {'pyspark', 'sqlglot', 'py4j'}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=False, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "LOADED []"
    assert '"results"' in proc.stdout
