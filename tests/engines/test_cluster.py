"""A real Spark cluster on loopback: a standalone master and two workers (the classes that
ship with pyspark, started with its `bin/spark-class`), the decision frame and an
experiment analysis run through it by a driver in its own process, compared with DuckDB's
on the same files (1e-9, as in test_spark.py). Then a Spark Connect server whose driver
runs on the same cluster, and the analysis again through `sc://`: the client holds no
JVM. The finalizer stops the daemons."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tests.conftest import ROOT, run_cli
from tests.engines.test_spark import WEEK, ab_file, same

pytestmark = pytest.mark.slow

# the driver: builds the frame on the cluster, then runs the CLI analysis through it
DRIVER = """
import sys
from upshot.attribution.uplift.frames import write_decision_frame
from upshot.cli import main
from upshot.config import load_config
from upshot.engines import open_spark
import json

config = load_config(sys.argv[1])
tables = json.loads(sys.argv[2])
engine = open_spark(config, tables)
n = write_decision_frame(engine, config, sys.argv[3], start=sys.argv[4], end=sys.argv[5])
sys.stderr.write(f"frame rows {n}\\n")
main(["--config", sys.argv[1], "--engine", "spark", *sys.argv[6:]])
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int, seconds: float, proc: subprocess.Popen | None = None) -> bool:
    """The port answers within `seconds`; False at once if `proc` has died."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and (proc is None or proc.poll() is None):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.5)
    return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, request):
    """spark://127.0.0.1:<port> with two one-core workers; stopped when the module ends."""
    from tests.engines.conftest import java_version

    if java_version() is None:
        pytest.skip("no java: apt-get install openjdk-17-jre-headless (see make java-check)")
    import pyspark

    home = Path(pyspark.__file__).parent
    folder = tmp_path_factory.mktemp("cluster")
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_DAEMON_MEMORY": "256m",
        "SPARK_LOG_DIR": str(folder),
    }
    port = _free_port()
    url = f"spark://127.0.0.1:{port}"
    cls = str(home / "bin" / "spark-class")
    procs: list[subprocess.Popen] = []

    def stop() -> None:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    request.addfinalizer(stop)  # noqa: PT021 (registered before the first daemon starts)
    master = [cls, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1"]
    master += ["--port", str(port), "--webui-port", str(_free_port())]
    log = (folder / "master.log").open("w")
    procs.append(subprocess.Popen(master, env=env, stdout=log, stderr=subprocess.STDOUT))
    assert _wait_for(port, 90), "the standalone master did not start"
    for i in range(2):
        worker = [cls, "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1"]
        worker += ["--cores", "1", "--memory", "1g", "--webui-port", str(_free_port())]
        worker += ["--work-dir", str(folder / f"work{i}")]
        log = (folder / f"worker{i}.log").open("w")
        procs.append(subprocess.Popen(worker, env=env, stdout=log, stderr=subprocess.STDOUT))
    # both workers registered: the master's log says so
    end = time.monotonic() + 120
    while time.monotonic() < end:
        if (folder / "master.log").read_text().count("Registering worker") >= 2:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the two workers did not register with the master")
    return url, env, procs


def _analysis(folder: Path, url: str) -> tuple[Path, list[str]]:
    """A config pointing upshot's Spark engine at `url`, and the analysis both tests run."""
    config = folder / "upshot.toml"
    config.write_text(f'[engine]\nkind = "spark"\nspark_master = "{url}"\n', encoding="utf-8")
    analysis = [
        "experiments", "analyze", "--table", str(ab_file(folder)), "--variant-col", "variant",
        "--control", "control", "--metric", "minutes", "--metric", "converted",
        "--ratio", "clicks/sends", "--covariate", "minutes=pre_minutes", "--adjust", "lin",
        "--no-save", "--json",
    ]  # fmt: skip
    return config, analysis


def test_frame_and_analysis_through_a_standalone_cluster(cluster, lake, duck_lake, tmp_path):
    from upshot.attribution.uplift.frames import decision_frame, frame_files
    from upshot.config import Config

    url, env, procs = cluster
    config, analysis = _analysis(tmp_path, url)
    frame_path = tmp_path / "decisions.parquet"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            DRIVER,
            str(config),
            json.dumps(lake),
            str(frame_path),
            *WEEK,
            *analysis,
        ],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        timeout=400,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert all(p.poll() is None for p in procs), "a daemon died during the run"
    # the work ran on the workers: each wrote its executor's folder
    assert any((Path(w).exists() and any(Path(w).iterdir())) for w in _work_dirs(procs))
    want = decision_frame(duck_lake, Config(), start=WEEK[0], end=WEEK[1])
    got = pl.scan_parquet(frame_files(frame_path)).collect()
    assert_frame_equal(got, want, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)
    duck = run_cli("--engine", "duckdb", *analysis, cwd=tmp_path)
    assert duck.code == 0, duck.err
    same(json.loads(proc.stdout), json.loads(duck.out))


@pytest.fixture(scope="module")
def connect(cluster, request):
    """sc://127.0.0.1:<port>: a Spark Connect server (its jar ships with pyspark 4) whose
    driver runs on the cluster. Started after the first test, whose driver then holds
    the workers' cores; stopped when the module ends."""
    url, env, _ = cluster
    folder = Path(env["SPARK_LOG_DIR"])
    port = _free_port()
    cls = str(Path(env["SPARK_HOME"]) / "bin" / "spark-class")
    server = [cls, "org.apache.spark.deploy.SparkSubmit", "--master", url]
    server += ["--class", "org.apache.spark.sql.connect.service.SparkConnectServer"]
    server += ["--conf", f"spark.connect.grpc.binding.port={port}"]
    server += ["--conf", "spark.ui.enabled=false", "spark-internal"]
    log = (folder / "connect.log").open("w")
    # Spark's launcher sizes a Connect server's heap by SPARK_DAEMON_MEMORY, as a daemon's
    server_env = {**env, "SPARK_DAEMON_MEMORY": "1g"}
    proc = subprocess.Popen(server, env=server_env, stdout=log, stderr=subprocess.STDOUT)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()

    request.addfinalizer(stop)  # noqa: PT021 (registered as soon as the server starts)
    if not _wait_for(port, 180, proc):
        pytest.fail(
            "the Spark Connect server did not start: "
            + (folder / "connect.log").read_text()[-2000:]
        )
    return f"sc://127.0.0.1:{port}", proc


def test_analysis_through_spark_connect(cluster, connect, tmp_path):
    url, proc = connect
    config, analysis = _analysis(tmp_path, url)
    # in its own process: a Connect client, with no JVM of its own
    got = subprocess.run(
        [sys.executable, "-m", "upshot", "--config", str(config), "--engine", "spark", *analysis],
        capture_output=True,
        text=True,
        env={**cluster[1], "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        timeout=400,
        check=False,
    )
    assert got.returncode == 0, got.stderr[-3000:]
    assert proc.poll() is None, "the Spark Connect server died during the run"
    # the server ran the statements: its (INFO) log records each operation it executed
    log = (Path(cluster[1]["SPARK_LOG_DIR"]) / "connect.log").read_text()
    assert "ExecuteHolder" in log, log[-2000:]
    duck = run_cli("--engine", "duckdb", *analysis, cwd=tmp_path)
    assert duck.code == 0, duck.err
    same(json.loads(got.stdout), json.loads(duck.out))


def _work_dirs(procs: list[subprocess.Popen]) -> list[str]:
    out = []
    for proc in procs:
        args = list(proc.args)  # type: ignore[arg-type]
        if "--work-dir" in args:
            out.append(str(args[args.index("--work-dir") + 1]))
    return out
