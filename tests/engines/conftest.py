"""One local Spark session for every Spark test, and a small lake both engines read."""

from __future__ import annotations

import shutil
import subprocess

import pytest


def java_version() -> str | None:
    """`java -version`'s first line, or None when there is no java."""
    if shutil.which("java") is None:
        return None
    proc = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    return (proc.stderr or proc.stdout).splitlines()[0] if proc.returncode == 0 else None


@pytest.fixture(scope="session")
def spark_session():
    """The one local[2] session of the test run (an engine at local[2] reuses it)."""
    if java_version() is None:
        pytest.skip("no java: apt-get install openjdk-17-jre-headless (see make java-check)")
    from upshot.engines.spark import spark_session

    return spark_session("local[2]", "1g")


@pytest.fixture(scope="session")
def lake(tmp_path_factory):
    """A two-week simulated world as a hive-partitioned Parquet lake: table -> folder."""
    from tests.engines.lake import write_lake

    return write_lake(tmp_path_factory.mktemp("lake"), users=800)


@pytest.fixture(scope="session")
def spark_lake(spark_session, lake):
    from upshot.engines.spark import SparkEngine

    return SparkEngine("local[2]", tables=lake)


@pytest.fixture(scope="session")
def duck_lake(lake):
    from tests.engines.lake import duckdb_views

    con = duckdb_views(lake)
    yield con
    con.close()
