"""The Ray backend keeps the local backend's contract: same tasks, same results, task order.

The reference is the local backend itself: the uplift engine runs a small simulated world
with `backend = "local"` and with `backend = "ray"` (through the dispatch in
`backend.map_fits`, with `map_fits_ray` wrapped only to record where each task ran), and
every estimate and covariance must be identical, compared as their exact JSON (NaN-safe,
every float's full repr): the tasks carry their seeds and thread counts, so where a fit
runs must not change a single bit. The CLI (`upshot uplift --table ... --backend ray
--json`) must print the same estimates as one JSON document.

Two Ray set-ups: a private local Ray (what `--backend ray` without `--ray-address` starts)
and a two-node cluster on loopback made with `ray start` (a head on 127.0.0.2 and a worker
on 127.0.0.3, one CPU each), where the per-task placements must cover both nodes. Ray
replaces 127.0.0.1 by the host's address, so the nodes use other loopback addresses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("ray")

import upshot.attribution.uplift.estimate as estimate_module
import upshot.attribution.uplift.ray_backend as ray_backend
from upshot.attribution.uplift.estimate import estimate_uplift
from upshot.attribution.uplift.ray_backend import Placement, map_fits_ray, ray_session, task_nbytes
from upshot.config import Uplift
from upshot.errors import UsageError
from upshot.results import dumps

sys.path.insert(0, str(Path(__file__).parent))
from uplift_world import BINARY, OBJECTIVES, make_decisions

RAY = Path(sys.executable).with_name("ray")
HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"
START_TIMEOUT = 60.0  # seconds for a node to come up on a loaded 2-core machine
# small and linear so that both backends' fits stay within the test budget; the
# contract under test (identical results) does not depend on the size
SETTINGS = Uplift(nuisance="linear", seed=11, segments=("country",), min_segment_size=100)
ON_RAY = dataclasses.replace(SETTINGS, backend="ray")


@pytest.fixture(scope="module")
def world():
    frame, _ = make_decisions(500, seed=4)
    return frame


def _estimate(frame, settings=SETTINGS):
    return estimate_uplift(
        frame, outcomes=list(OBJECTIVES), binary=list(BINARY), settings=settings, refute=False
    )


@pytest.fixture(scope="module")
def local(world):
    return _estimate(world)


def _recording(placements: list[Placement]):
    """`map_fits_ray` that also records where each task ran; what `backend.map_fits` calls."""
    original = ray_backend.map_fits_ray

    def wrapped(fn, tasks, **options):
        return original(fn, tasks, on_placement=placements.append, **options)

    return wrapped


def _assert_same(a, b) -> None:
    assert len(a.estimates) == len(b.estimates) > 0
    assert dumps(a.documents()) == dumps(b.documents())
    assert dumps(a.covariance_dicts()) == dumps(b.covariance_dicts())
    assert [e.status for e in a.estimates if e.segment == "all"].count("ok") >= 8


def _last_words(task: float, status: str) -> str:
    return f"{task}: {status}"


def _allocate(nbytes: int) -> float:
    import numpy as np

    return float(np.ones(nbytes // 8).sum())


def _cli_estimates(table: Path, backend: str) -> list[dict]:
    from tests.conftest import run_cli

    result = run_cli(
        "uplift",
        "--table",
        str(table),
        "--treatment-col",
        "treated",
        *[arg for name in OBJECTIVES for arg in ("--outcome-col", name)],
        "--covariates",
        "activity,tenure_years,product_tier,country,platform",
        "--propensity-col",
        "propensity",
        "--nuisance",
        "linear",
        "--no-refute",
        "--backend",
        backend,
        "--json",
    )
    assert result.code == 0, result.err[-2000:]
    return json.loads(result.out)["estimates"]  # exactly one JSON document on stdout


def test_local_ray_gives_the_local_backends_results(world, local, monkeypatch, tmp_path):
    placements: list[Placement] = []
    monkeypatch.setattr(ray_backend, "map_fits_ray", _recording(placements))
    with ray_session(num_cpus=2) as ray:
        results = _estimate(world, ON_RAY)
        _assert_same(results, local)
        assert sorted(p.index for p in placements) == [0, 1, 2, 3]  # one Ray task per class
        assert {p.node_id for p in placements} == {ray.get_runtime_context().get_node_id()}

        # the contract on plain functions: task order whatever the finishing order
        seen: list[int] = []
        squares = [float(i * i) for i in range(12)]
        roots = map_fits_ray(
            math.sqrt, iter(squares), on_result=lambda i, _: seen.append(i), max_in_flight=3
        )
        assert roots == [float(i) for i in range(12)]
        assert sorted(seen) == list(range(12))
        assert map_fits_ray(math.sqrt, []) == []

        # an error inside fn is raised as itself, as the local backend does
        with pytest.raises(ValueError, match="math domain error"):
            map_fits_ray(math.sqrt, [4.0, -1.0])

        # over its memory budget on every node: a status, the other tasks still run
        # (the budget also bounds the worker's resident memory, about 0.23 GB at start)
        huge = ray.cluster_resources()["memory"] * 2
        out = map_fits_ray(
            math.sqrt,
            [4.0, 9.0],
            memory_per_task=lambda t: int(huge) if t == 9.0 else 2**30,
            on_failure=_last_words,
        )
        assert out[0] == 2.0
        assert out[1].startswith("9.0: failed:memory_budget (needs")

        # a worker that dies mid-task (as when the kernel kills it for memory) after
        # its retry: a status for that task instead of a crashed run
        out = map_fits_ray(os._exit, [3], on_failure=lambda t, s: s)
        assert out[0].startswith("failed:")

        with pytest.raises(UsageError, match="cpus_per_task"):
            map_fits_ray(math.sqrt, [1.0], cpus_per_task=0)

        # the CLI path, in the same Ray session
        table = tmp_path / "decisions.parquet"
        world.write_parquet(table)
        assert dumps(_cli_estimates(table, "ray")) == dumps(_cli_estimates(table, "local"))


def test_a_memory_budget_reaches_the_ray_task():
    from upshot.attribution.uplift.backend import map_fits

    budget = 1200 * 2**20  # a Ray worker starts at about 0.23 GB resident
    greedy = 2**31  # bytes: over the budget, so the watchdog ends the worker
    with ray_session(num_cpus=2) as ray:
        out = map_fits(
            _allocate,
            [2**20, greedy, 2**21],
            backend="ray",
            on_failure=_last_words,
            memory_per_task=budget,
        )
        # Ray does not pass on a dead worker's exit code: the status names both causes
        dead = "failed:worker_died (past its 1,200 MiB memory budget, or killed)"
        assert out == [2.0**17, f"{greedy}: {dead}", 2.0**18]
        # the budget is also the Ray reservation: more than any node has fails up front
        huge = int(ray.cluster_resources()["memory"] * 2)
        [status] = map_fits(
            _allocate, [2**20], backend="ray", on_failure=_last_words, memory_per_task=huge
        )
        assert status.startswith(f"{2**20}: failed:memory_budget (needs ")


def test_task_nbytes_counts_the_arrays_a_class_task_holds(world):
    import numpy as np

    tasks: list = []

    def keep(fn, tasks_, *args, **options):
        tasks.extend(tasks_)
        return []

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(estimate_module, "map_fits", keep)
        with contextlib.suppress(ValueError):  # no outcomes came back: expected here
            _estimate(world)
    task = tasks[0]
    arrays = [task.T, task.Y, task.X, task.logged, task.randomized]
    arrays += [s.codes for s in task.segments]
    expected = sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))
    assert task_nbytes(task) == expected > 500 * 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _node_ports() -> list[str]:
    """Every port a node opens, chosen free, so that nodes and other Rays never collide."""
    names = (
        "--node-manager-port",
        "--object-manager-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--metrics-export-port",
        "--runtime-env-agent-port",
    )
    return [arg for name in names for arg in (name, str(_free_port()))]


def _wait(ready, process: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            pytest.fail(f"{what} did not start:\n{tail}")
        time.sleep(0.3)


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


@contextlib.contextmanager
def two_node_cluster(env: dict[str, str]) -> Iterator[str]:
    """A head and a worker node (`ray start --block`, one CPU each); yields the address.

    Each node runs in its own session, so teardown kills exactly the processes it
    started (its process group), never other Ray instances on the machine.
    """
    temp = Path(tempfile.mkdtemp(prefix="upshot-ray-", dir="/tmp"))  # short: socket paths
    common = ["--num-cpus", "1", "--block", "--disable-usage-stats"]
    gcs = _free_port()
    address = f"{HEAD_IP}:{gcs}"
    nodes: list[subprocess.Popen] = []

    def start(name: str, args: list[str]) -> tuple[subprocess.Popen, Path]:
        log = temp / f"{name}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [str(RAY), "start", *args, *common, *_node_ports()],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        nodes.append(process)
        return process, log

    try:
        head, head_log = start(
            "head",
            [
                "--head",
                "--node-ip-address",
                HEAD_IP,
                "--port",
                str(gcs),
                "--include-dashboard",
                "false",
                "--dashboard-port",
                str(_free_port()),
                "--temp-dir",
                str(temp),
            ],
        )
        _wait(lambda: _port_open(HEAD_IP, gcs), head, head_log, "the head node")
        start("worker", ["--address", address, "--node-ip-address", WORKER_IP])
        yield address
    finally:
        for process in nodes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        subprocess.run(["rm", "-rf", str(temp)], check=False)


def drive(address: str) -> None:
    """The driver of the two-node test, run in its own process: one JSON line on stdout.

    Ray reads its authentication mode once per process, and a local Ray started earlier
    in the test process turns token mode on for good; a fresh driver process and one
    explicit mode for every process of the cluster keep both sides in agreement.
    """

    with ray_session(address) as ray:
        deadline = time.monotonic() + START_TIMEOUT
        while len([n for n in ray.nodes() if n["Alive"]]) < 2:
            if time.monotonic() > deadline:
                raise SystemExit("the worker node did not join")
            time.sleep(0.3)
        placements: list[Placement] = []
        ray_backend.map_fits_ray = _recording(placements)  # a process of its own: no undo
        frame, _ = make_decisions(500, seed=4)
        results = _estimate(frame, dataclasses.replace(ON_RAY, ray_address=address))
    document = {
        "estimates": dumps(results.documents()),
        "covariance": dumps(results.covariance_dicts()),
        "placements": [[p.index, p.node_id, p.node_address] for p in placements],
    }
    print(json.dumps(document))


def test_two_node_cluster_spreads_fits_with_identical_results(local):
    # a throwaway cluster on loopback; one explicit authentication mode for all of it
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    root = Path(__file__).resolve().parents[3]
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from tests.attribution.uplift.test_ray_backend import drive; drive(sys.argv[2])"
    )
    with two_node_cluster(env) as address:
        run = subprocess.run(
            [sys.executable, "-c", code, str(root), address],
            capture_output=True,
            text=True,
            env=env,
            cwd=root,
            timeout=300,
        )
    assert run.returncode == 0, run.stderr[-3000:]
    document = json.loads(run.stdout.strip().splitlines()[-1])
    assert document["estimates"] == dumps(local.documents())
    assert document["covariance"] == dumps(local.covariance_dicts())
    placements = document["placements"]
    assert sorted(index for index, _, _ in placements) == [0, 1, 2, 3]
    nodes = {node: address for _, node, address in placements}
    assert len(nodes) == 2  # the fits really ran on both nodes
    assert sorted(nodes.values()) == [HEAD_IP, WORKER_IP]
