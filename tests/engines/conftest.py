"""One local Spark session for every Spark test, and a small lake both engines read."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

# Every JVM the Spark tests start (the local driver, the standalone master, workers and
# executors, the Connect server) inherits this: the tests' data is tiny, so the JVM spends
# its CPU compiling, not running; C1 alone with one compiler thread took the JVM's CPU on
# test_spark.py + test_spark_lake.py from 188 s to 117 s (wall 123 -> 111 s on an idle
# machine; the other test worker gets the difference). Results do not depend on the JIT.
TEST_JVM = "-XX:TieredStopAtLevel=1 -XX:CICompilerCount=1 -XX:+UseSerialGC"
os.environ["JAVA_TOOL_OPTIONS"] = f"{os.environ.get('JAVA_TOOL_OPTIONS', '')} {TEST_JVM}".strip()


def java_version() -> str | None:
    """`java -version`'s first line, or None when there is no java."""
    if shutil.which("java") is None:
        return None
    proc = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    # the JVM first says it picked up JAVA_TOOL_OPTIONS (set above)
    lines = [x for x in (proc.stderr or proc.stdout).splitlines() if not x.startswith("Picked up")]
    return lines[0] if proc.returncode == 0 and lines else None


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
