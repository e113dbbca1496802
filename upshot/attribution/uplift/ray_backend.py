"""Per-class fits as Ray tasks: the `uplift.backend = "ray"` branch of `backend.map_fits`.

`map_fits_ray(fn, tasks, address=...)` keeps the local backend's contract exactly:
it returns `[fn(t) for t in tasks]` in task order, `on_result(i, result)` is called as
each task finishes, and because each task carries its own seed and thread count the
same tasks give the same results, bit for bit, on either backend and on any node.

How the work travels. Each task is `ray.put` into the object store once, as the driver
builds it, and the Ray task receives only the reference: numpy arrays are stored as
out-of-band buffers, so a worker on the driver's node maps them without a copy and a
worker on another node pulls them once. `fn` travels as a reference to its module-level
function. At most `max_in_flight` tasks are submitted at a time (default: twice the
cluster's task slots), so the driver keeps building the next class while the cluster
fits the current ones, and the task iterable is never materialised.

Where it runs. With `address=None` a private local Ray is started for the call and shut
down after it (`"local"`, never one found by `ray start` on the machine); with an
address (`head:6379`, `ray://head:10001`, `auto`) it connects to that cluster. When Ray is
already initialised in this process, that session is used and left running. Tasks are
scheduled with the SPREAD strategy: a fit is minutes of CPU against milliseconds of
transfer, so spreading over nodes beats packing. Each task reports where it ran
(`Placement`: node id and address, worker pid, seconds) through `on_placement`.

Budgets. A task reserves `cpus_per_task` CPUs (capped at the largest node's, so a task
is never unschedulable; the thread count inside the task does not change, nor do its
results) and, when `memory_per_task` is given, that many bytes of Ray's logical memory
resource, so that a node never runs more fits at once than its memory holds; the same
bytes bound the worker's resident memory while it runs the task (a watchdog ends the
worker past it, see `upshot.attribution.uplift.budget`; a Ray worker starts at about 0.23 GB),
so that a fit that outgrows its reservation fails alone instead of crowding out the
node's other fits. Ray reports such a worker as crashed, without its exit code, so the
status then says both possible causes.
A task whose reservation exceeds every node, that runs out of its budget, or whose worker
dies (out of memory, a lost node) after its one retry, becomes `on_failure(task, status)`
with a `failed:<reason>` status instead of ending the whole run; without `on_failure`
the error is raised.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from upshot.attribution.uplift.budget import OverBudget, run_within
from upshot.errors import UpshotError, UsageError

if TYPE_CHECKING:
    import ray

T = TypeVar("T")
R = TypeVar("R")

INSTALL_HINT = "the Ray backend needs the optional extra: pip install 'upshot[ray]'"
MAX_RETRIES = 1  # one retry covers a lost node; a fit that runs out of memory fails fast
MiB = 2**20


@dataclass(frozen=True, slots=True)
class Placement:
    """Where task `index` ran: the Ray node (`node_id` hex, `node_address` its IP), the
    worker's `pid`, and `seconds` of wall time spent in `fn` inside the worker."""

    index: int
    node_id: str
    node_address: str
    pid: int
    seconds: float


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[Any]:
    """The `ray` module, connected: to `address`, or to a private local Ray when None.

    An already initialised session is used as is and left running; one started here is
    shut down on exit. `num_cpus` sizes a local Ray (default: every CPU of the machine).
    """
    ray = _import_ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs: dict[str, Any] = {
        "address": address or "local",
        "include_dashboard": False,
        # workers must not write into this process's stdout: `--json` owns it
        "log_to_driver": False,
        "logging_level": "WARNING",
        "configure_logging": False,
    }
    if address is None and num_cpus is not None:
        kwargs["num_cpus"] = num_cpus
    try:
        ray.init(**kwargs)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = f"--ray-address {address}" if address else "a local Ray"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UpshotError(f"{where}: cannot start or connect: {first}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _run(fn: Callable[[Any], Any], index: int, task: Any, budget: int) -> tuple[Any, Placement]:
    """Inside a Ray worker: `fn(task)` within `budget` bytes (0: none), or `OverBudget`,
    and where it ran (the node address is filled later)."""
    import ray

    started = time.perf_counter()
    result = run_within(fn, task, budget)
    node = ray.get_runtime_context().get_node_id()
    return result, Placement(index, node, "", os.getpid(), time.perf_counter() - started)


def task_nbytes(task: Any) -> int:
    """Bytes of the numpy arrays a task holds (fields of a dataclass, and of the tuples
    and dataclasses in them, two levels down): what a fit reads, to scale its budget."""
    import dataclasses

    import numpy as np

    def size(value: Any, depth: int) -> int:
        if isinstance(value, np.ndarray):
            return int(value.nbytes)
        if depth > 2:
            return 0
        if isinstance(value, tuple | list):
            return sum(size(v, depth + 1) for v in value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return sum(size(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value))
        return 0

    return size(task, 0)


def cluster_nodes(ray: Any) -> dict[str, dict[str, float]]:
    """Alive nodes: node id → {"address": ..., "CPU": ..., "memory": bytes} (Ray's view)."""
    out: dict[str, dict[str, Any]] = {}
    for node in ray.nodes():
        if node.get("Alive"):
            resources = node.get("Resources", {})
            out[node["NodeID"]] = {
                "address": node.get("NodeManagerAddress", ""),
                "CPU": float(resources.get("CPU", 0.0)),
                "memory": float(resources.get("memory", 0.0)),
            }
    return out


def map_fits_ray(
    fn: Callable[[T], R],
    tasks: Iterable[T],
    *,
    address: str | None = None,
    on_result: Callable[[int, R], None] | None = None,
    on_placement: Callable[[Placement], None] | None = None,
    on_failure: Callable[[T, str], R] | None = None,
    cpus_per_task: int = 1,
    memory_per_task: Callable[[T], int] | None = None,
    max_in_flight: int | None = None,
) -> list[R]:
    """`[fn(t) for t in tasks]` in task order, each `fn(t)` run as a Ray task.

    `fn` must be a module-level function and each task picklable (as for the local
    backend). See the module docstring for `address`, the budgets (`cpus_per_task`,
    `memory_per_task(task)` in bytes, `on_failure`) and `max_in_flight`.
    """
    if cpus_per_task < 1:
        raise UsageError(f"cpus_per_task == {cpus_per_task}, must be >= 1")
    if max_in_flight is not None and max_in_flight < 1:
        raise UsageError(f"max_in_flight == {max_in_flight}, must be >= 1")
    # Ray prints the raylet's error reports (a worker died, a retry) to sys.stdout, which
    # belongs to `--json`; during the run they go to stderr with the other progress
    with contextlib.redirect_stdout(sys.stderr), ray_session(address) as ray:
        nodes = cluster_nodes(ray)
        if not nodes:
            raise UpshotError("the Ray cluster has no alive node")
        largest_cpu = max(n["CPU"] for n in nodes.values())
        largest_memory = max(n["memory"] for n in nodes.values())
        cpus = max(1.0, min(float(cpus_per_task), largest_cpu))
        slots = max(1, int(sum(n["CPU"] for n in nodes.values()) // cpus))
        limit = max_in_flight or 2 * slots
        remote = ray.remote(_run)
        base = {"num_cpus": cpus, "scheduling_strategy": "SPREAD", "max_retries": MAX_RETRIES}
        run = _Run(ray, nodes, on_result, on_placement, on_failure)
        for i, task in enumerate(tasks):
            while len(run.pending) >= limit:
                run.collect()
            need = memory_per_task(task) if memory_per_task else 0
            if need > largest_memory > 0:
                run.fail(
                    i,
                    task,
                    f"memory_budget (needs {need / MiB:,.0f} MiB, the largest node "
                    f"offers {largest_memory / MiB:,.0f} MiB)",
                )
                continue
            ref = ray.put(task)
            options = {**base, "memory": need} if need else base
            run.submit(i, ref, remote.options(**options).remote(fn, i, ref, need), need)
        while run.pending:
            run.collect()
        return [run.results[i] for i in range(len(run.results))]


class _Run:
    """The bookkeeping of one `map_fits_ray` call: tasks in flight and results so far."""

    def __init__(
        self,
        ray: Any,
        nodes: dict[str, dict[str, Any]],
        on_result: Callable[[int, Any], None] | None,
        on_placement: Callable[[Placement], None] | None,
        on_failure: Callable[[Any, str], Any] | None,
    ) -> None:
        self.ray = ray
        self.nodes = nodes
        self.on_result = on_result
        self.on_placement = on_placement
        self.on_failure = on_failure
        self.pending: dict[ray.ObjectRef, tuple[int, ray.ObjectRef, int]] = {}
        self.results: dict[int, Any] = {}

    def submit(self, index: int, task_ref: Any, result_ref: Any, budget: int) -> None:
        self.pending[result_ref] = (index, task_ref, budget)

    def done(self, index: int, result: Any) -> None:
        self.results[index] = result
        if self.on_result:
            self.on_result(index, result)

    def fail(self, index: int, task: Any, reason: str) -> None:
        status = f"failed:{reason}"
        if self.on_failure is None:
            raise UpshotError(f"Ray task {index} {status}")
        self.done(index, self.on_failure(task, status))

    def collect(self) -> None:
        """Wait for at least one task in flight to finish, and take in the finished ones."""
        ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=None)
        for ref in ready:
            index, task_ref, budget = self.pending.pop(ref)
            try:
                result, placement = self.ray.get(ref)
            except self.ray.exceptions.RayTaskError:
                self._cancel()
                raise  # fn raised: the same error the local backend would raise
            except self.ray.exceptions.RayError as exc:  # the worker or its node died
                reason = type(exc).__name__
                if isinstance(exc, self.ray.exceptions.OutOfMemoryError):
                    reason = "out_of_memory"
                elif budget and isinstance(exc, self.ray.exceptions.WorkerCrashedError):
                    # the budget's watchdog ends the worker; Ray does not pass on its code
                    limit = f"{budget / MiB:,.0f} MiB"
                    reason = f"worker_died (past its {limit} memory budget, or killed)"
                self.fail(index, self.ray.get(task_ref), reason)
                continue
            if isinstance(result, OverBudget):
                self.fail(index, self.ray.get(task_ref), result.reason())
                continue
            if self.on_placement:
                address = self.nodes.get(placement.node_id, {}).get("address", "")
                self.on_placement(
                    Placement(index, placement.node_id, address, placement.pid, placement.seconds)
                )
            self.done(index, result)

    def _cancel(self) -> None:
        for ref in self.pending:
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)
        self.pending.clear()
