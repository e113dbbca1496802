"""Where the per-class fits run: in this process, or in a pool of local worker processes.

`map_fits(fn, tasks, jobs)` is the one seam between the estimation code and the executor:
it returns `[fn(task) for task in tasks]`, in task order, whatever runs them. `fn` must be
a module-level function and each task picklable. The Ray backend (`uplift.backend = "ray"`,
`upshot.attribution.ray_backend`) is the other branch, with the same contract, so nothing
above this module changes.

Worker processes are started with `spawn`, not `fork`: the parent may hold a DuckDB
connection and thread pools that a forked child must not inherit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TypeVar

from upshot.errors import UsageError

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
) -> list[R]:
    """`[fn(t) for t in tasks]` in task order, run by up to `jobs` local processes.

    Tasks are drawn from the iterable only as workers free up, so at most `jobs` of them
    are in memory at once. `on_result(i, result)` is called as each task finishes.
    """
    if jobs < 1:
        raise UsageError(f"--jobs == {jobs}, must be >= 1")
    if backend == "ray":
        from upshot.attribution.ray_backend import map_fits_ray

        # each fit keeps the thread count its task carries (so results match the local
        # backend bit for bit); Ray reserves that many CPUs for it
        return map_fits_ray(
            fn,
            tasks,
            address=address,
            on_result=on_result,
            on_failure=on_failure,
            cpus_per_task=threads_per_fit(jobs),
        )
    if backend != "local":
        raise UsageError(f"uplift.backend == {backend!r}, must be local or ray")
    results: dict[int, R] = {}

    def done(i: int, result: R) -> None:
        results[i] = result
        if on_result:
            on_result(i, result)

    if jobs == 1:
        for i, task in enumerate(tasks):
            done(i, fn(task))
        return [results[i] for i in range(len(results))]
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")
    pending: dict[Future[R], int] = {}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        for i, task in enumerate(tasks):
            if len(pending) >= jobs:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    done(pending.pop(future), future.result())
            pending[pool.submit(fn, task)] = i
        for future in list(pending):
            done(pending.pop(future), future.result())
    return [results[i] for i in range(len(results))]
