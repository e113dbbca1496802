"""Where the per-class fits run: in this process, or in a pool of local worker processes.

`map_fits(fn, tasks, jobs)` is the one seam between the estimation code and the executor:
it returns `[fn(task) for task in tasks]`, in task order, whatever runs them. `fn` must be
a module-level function and each task picklable. The Ray backend (`uplift.backend = "ray"`,
`upshot.attribution.uplift.ray_backend`) is the other branch, with the same contract, so nothing
above this module changes.

Worker processes are started with `spawn`, not `fork`: the parent may hold a DuckDB
connection and thread pools that a forked child must not inherit. They start as the pool
opens and import the `preload` modules (the fitting code: seconds of CPU each) while the
driver builds the first tasks, instead of one after the other when their first task comes.

Failures that end one task, not the run: a fit over its memory budget (`memory_per_task`,
see `upshot.attribution.uplift.budget`) and a worker process that dies (the kernel's
out-of-memory killer, a crash in C code). They become `on_failure(task, status)`, a
`failed:<reason>` status; without `on_failure` they raise `UpshotError`. An exception
that `fn` raises is raised as itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from upshot.attribution.uplift.budget import Died, OverBudget, run_alone, run_within
from upshot.errors import UpshotError, UsageError

T = TypeVar("T")
R = TypeVar("R")


def cpu_count() -> int:
    """The CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# below this many rows a boosted model gains nothing from threads, and OpenMP threads that
# spin while other processes hold the CPUs make it many times slower
THREADED_ROWS = 50_000


def threads_per_fit(jobs: int, rows: int | None = None) -> int:
    """Threads for one fit of `rows` rows while `jobs` fits run side by side."""
    if rows is not None and rows < THREADED_ROWS:
        return 1
    return max(1, cpu_count() // max(1, jobs))


def map_fits(
    fn: Callable[[T], R],
    tasks: Iterable[T],
    jobs: int = 1,
    *,
    backend: str = "local",
    on_result: Callable[[int, R], None] | None = None,
    address: str | None = None,
    on_failure: Callable[[T, str], R] | None = None,
    memory_per_task: int = 0,
    preload: Sequence[str] = (),
) -> list[R]:
    """`[fn(t) for t in tasks]` in task order, run by up to `jobs` local processes.

    Tasks are drawn from the iterable only as workers free up, so at most `jobs` of them
    are in memory at once. `on_result(i, result)` is called once per task, as it finishes.
    `memory_per_task` bytes (0: no budget) caps each worker's data segment while it runs
    a task (imports included: see `upshot.attribution.uplift.budget`); with a budget every task
    runs in a worker, even with `jobs == 1`, so the limit never touches this process.
    When a worker dies, which task killed it is unknown: every task then in flight runs
    once more, alone in a process of its own, one after another (results are
    deterministic, so a rerun gives the same result); one that ends its process again
    gets a `failed:worker_died (...)` status, and the rest go on in a fresh pool. On Ray
    the budget is both each task's memory reservation and its worker's limit. Local
    worker processes import the `preload` modules as they start.
    """
    if jobs < 1:
        raise UsageError(f"--jobs == {jobs}, must be >= 1")
    if memory_per_task < 0:
        raise UsageError(f"uplift.memory_per_task == {memory_per_task}, must be >= 0")
    if backend == "ray":
        from upshot.attribution.uplift.ray_backend import map_fits_ray

        # each fit keeps the thread count its task carries (so results match the local
        # backend bit for bit); Ray reserves that many CPUs for it
        budget = memory_per_task
        return map_fits_ray(
            fn,
            tasks,
            address=address,
            on_result=on_result,
            on_failure=on_failure,
            cpus_per_task=threads_per_fit(jobs),
            memory_per_task=(lambda _: budget) if budget else None,
        )
    if backend != "local":
        raise UsageError(f"uplift.backend == {backend!r}, must be local or ray")
    run = _Local(fn, on_result, on_failure, memory_per_task)
    if jobs == 1 and not memory_per_task:
        for i, task in enumerate(tasks):
            run.done(i, fn(task))
    else:
        run.pooled(tasks, jobs, tuple(preload))
    return [run.results[i] for i in range(len(run.results))]


class _Local:
    """The bookkeeping of one local `map_fits` call: results, and the pool's tasks."""

    def __init__(self, fn: Callable[[Any], Any], on_result: Any, on_failure: Any, budget: int):
        self.fn, self.on_result, self.on_failure, self.budget = fn, on_result, on_failure, budget
        self.results: dict[int, Any] = {}

    def done(self, index: int, result: Any) -> None:
        self.results[index] = result
        if self.on_result:
            self.on_result(index, result)

    def settle(self, index: int, task: Any, result: Any) -> None:
        if isinstance(result, OverBudget | Died):
            status = f"failed:{result.reason()}"
            if self.on_failure is None:
                raise UpshotError(f"fit task {index} {status}")
            result = self.on_failure(task, status)
        self.done(index, result)

    def pooled(self, tasks: Iterable[Any], jobs: int, preload: tuple[str, ...] = ()) -> None:
        import multiprocessing
        from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, wait
        from concurrent.futures import ProcessPoolExecutor as Pool
        from concurrent.futures.process import BrokenProcessPool

        context = multiprocessing.get_context("spawn")
        pending: dict[Future[Any], tuple[int, Any]] = {}

        def new_pool() -> Pool:
            return Pool(
                max_workers=jobs, mp_context=context, initializer=_import, initargs=(preload,)
            )

        pool = new_pool()
        # a pool spawns a worker per task submitted while none is idle: `jobs` empty tasks
        # start them all now, importing `preload` while the first real tasks are built
        for _ in range(jobs if preload else 0):
            pool.submit(_import, ())

        def gather(return_when: str) -> list[tuple[int, Any]]:
            """Take in finished tasks; those lost with a dead worker come back as orphans."""
            orphans: list[tuple[int, Any]] = []
            while True:
                finished, _ = wait(pending, return_when=return_when)
                for future in finished:
                    index, task = pending.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        orphans.append((index, task))
                    else:
                        self.settle(index, task, result)
                if not orphans or not pending:
                    return orphans
                # a dead worker fails every task in flight: gather them all
                return_when = ALL_COMPLETED

        def recover(orphans: list[tuple[int, Any]]) -> None:
            nonlocal pool
            pool.shutdown(wait=True)
            # which of them killed the worker is unknown: each runs again, alone
            for index, task in sorted(orphans, key=lambda o: o[0]):
                self.settle(index, task, run_alone(context, self.fn, task, self.budget))
            pool = new_pool()

        def collect() -> None:
            orphans = gather(FIRST_COMPLETED)
            if orphans:
                recover(orphans)

        try:
            for i, task in enumerate(tasks):
                while len(pending) >= jobs:
                    collect()
                try:
                    future = pool.submit(run_within, self.fn, task, self.budget)
                except BrokenProcessPool:  # a worker died since the last collect
                    recover(gather(ALL_COMPLETED))
                    future = pool.submit(run_within, self.fn, task, self.budget)
                pending[future] = (i, task)
            while pending:
                collect()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _import(modules: tuple[str, ...]) -> None:
    """Import `modules` in a worker as it starts. A module that fails to import is left to
    fail where a task needs it, with the task's own error handling."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: S112 - reported by the task that imports it
            continue
