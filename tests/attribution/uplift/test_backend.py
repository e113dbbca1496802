"""The local fit backend: `[fn(t) for t in tasks]` in task order, whatever goes wrong in a worker.

The reference is the list comprehension itself. Failures are made for real, not mocked:
a task that SIGKILLs its own worker (what the kernel's out-of-memory killer does), one
that exits, and one that allocates 2 GiB under a 1,200 MiB budget (its watchdog ends it). Each
must end as a `failed:<reason>` status for that task alone (or an `UpshotError` naming
it), with every other task's real result in its place. The helpers are module-level so
that spawned workers can import them.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from upshot.attribution.uplift.backend import map_fits
from upshot.attribution.uplift.budget import (
    OVER_BUDGET,
    Died,
    OverBudget,
    RemoteTracebackError,
    memory_watch,
    resident_bytes,
    run_alone,
)
from upshot.errors import UpshotError, UsageError

MiB = 2**20
# far above a spawned worker's own resident memory (about 0.1 GB with numpy and pytest
# imported), far below the 2 GiB the greedy task asks for
BUDGET = 1200 * MiB
GREEDY = 2**31  # bytes
KILLED = "failed:worker_died (SIGKILL; out of memory if the kernel killed it)"


def square(x: int) -> int:
    time.sleep(0.02 * (x % 3))  # so that tasks finish out of order
    return x * x


def perilous(x: int) -> int:
    """`x * x`, except that task 3 kills its worker, task 5 exits and -1 raises."""
    if x == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    if x == 5:
        os._exit(7)
    if x < 0:
        raise ValueError(f"task {x} is negative")
    return square(x)


def allocate(nbytes: int) -> float:
    return float(np.ones(nbytes // 8).sum())


def watched() -> bool:
    return any(t.name == "upshot-memory-watch" for t in threading.enumerate())


def where(_: object) -> tuple[int, bool]:
    """The pid this runs in, and whether a memory watchdog watches it."""
    return os.getpid(), watched()


def starved(_: object) -> float:
    raise MemoryError("the machine itself is out of memory")


def _last_words(task: int, status: str) -> str:
    return f"{task}: {status}"


@pytest.mark.parametrize("jobs", [1, 2])
def test_results_in_task_order_and_each_reported_once(jobs):
    drawn: list[int] = []
    seen: list[int] = []

    def tasks():
        for x in range(9):
            # never more than `jobs` tasks drawn and not finished
            assert len(drawn) - len(seen) <= jobs
            drawn.append(x)
            yield x

    results = map_fits(square, tasks(), jobs, on_result=lambda i, _: seen.append(i))
    assert results == [square(x) for x in range(9)]
    assert sorted(seen) == list(range(9))
    assert map_fits(square, [], jobs) == []


def test_a_task_that_kills_its_worker_fails_alone():
    seen: list[int] = []
    tasks = [0, 1, 2, 3, 4, 5, 6, 7]
    out = map_fits(
        perilous, iter(tasks), 2, on_result=lambda i, _: seen.append(i), on_failure=_last_words
    )
    # the tasks in flight with 3 and 5 lost their worker too: rerun alone, they succeed
    expected = [x * x for x in tasks]
    expected[3] = f"3: {KILLED}"
    expected[5] = "5: failed:worker_died (exit code 7)"
    assert out == expected
    assert sorted(seen) == tasks

    with pytest.raises(UpshotError, match=r"^fit task 3 failed:worker_died \(SIGKILL;"):
        map_fits(perilous, tasks, 2)
    # an exception that fn raises is not a death: it is raised as itself
    with pytest.raises(ValueError, match="task -1 is negative"):
        map_fits(perilous, [1, -1, 2], 2, on_failure=_last_words)


def test_a_task_over_its_memory_budget_fails_alone():
    status = "failed:memory_budget (1,200 MiB)"
    for jobs in (1, 2):
        out = map_fits(
            allocate,
            [8 * MiB, GREEDY, 8 * MiB, 16 * MiB],
            jobs,
            on_failure=_last_words,
            memory_per_task=BUDGET,
        )
        # the greedy task's worker is ended; the tasks after it run in a fresh pool
        assert out == [float(MiB), f"{GREEDY}: {status}", float(MiB), float(2 * MiB)]
    with pytest.raises(UpshotError, match=r"^fit task 1 failed:memory_budget \(1,200 MiB\)$"):
        map_fits(allocate, [MiB, GREEDY], 1, memory_per_task=BUDGET)
    # a MemoryError (the machine, not the budget) is the same status, without a death
    assert map_fits(starved, [0], 2, on_failure=_last_words, memory_per_task=BUDGET) == [
        f"0: {status}"
    ]
    # without a budget nothing is watched
    assert map_fits(allocate, [GREEDY // 4], 2) == [float(GREEDY // 32)]


def test_a_budget_watches_a_worker_never_this_process():
    [(pid, is_watched)] = map_fits(where, [None], 1, memory_per_task=BUDGET)
    assert pid != os.getpid()
    assert is_watched
    assert not watched()
    [(pid, is_watched)] = map_fits(where, [None], 2)
    assert not is_watched


def loaded(module: str) -> tuple[int, bool]:
    import sys

    return os.getpid(), module in sys.modules


def test_workers_import_the_preload_modules_and_the_driver_does_not():
    # a module no worker would otherwise import: each worker has it before its first task
    module = "upshot.experiments.sequential"
    out = map_fits(loaded, [module] * 4, 2, preload=(module,))
    assert all(has for _, has in out)
    assert os.getpid() not in {pid for pid, _ in out}
    # without preload the same workers would not have it
    assert not any(has for _, has in map_fits(loaded, [module] * 2, 2))


def test_the_driver_of_pooled_fits_never_loads_the_fitting_code():
    # the fitting code (scikit-learn, LightGBM, EconML) costs seconds of CPU per process:
    # with --jobs 2 only the workers load it, not the process that builds the tasks
    import subprocess
    import sys

    script = (
        "import sys, polars as pl\n"
        "from tests.attribution.uplift.uplift_world import make_decisions\n"
        "from upshot.attribution import estimate_uplift\n"
        "from upshot.config import Uplift\n"
        "if __name__ == '__main__':\n"
        "    frame, _ = make_decisions(600, seed=1)\n"
        "    s = Uplift(nuisance='linear', segments=(), jobs=2)\n"
        "    r = estimate_uplift(frame, outcomes=['engagement'], settings=s, refute=False)\n"
        "    assert not any(e.status.startswith('failed') for e in r.estimates)\n"
        "    print(sorted(m for m in ('sklearn', 'lightgbm', 'econml') if m in sys.modules))\n"
    )
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=root, check=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_watchdog_reads_resident_memory_and_stops_with_its_block():
    # /proc/self/status reports the same kernel counter in kB: equal to a few pages
    lines = Path("/proc/self/status").read_text().splitlines()
    vm_rss = next(int(line.split()[1]) for line in lines if line.startswith("VmRSS"))
    assert abs(resident_bytes() - vm_rss * 1024) < 4 * MiB
    with memory_watch(2**50):  # far above anything this process holds
        assert watched()
    assert not watched()


def test_run_alone_reports_death_and_raises_what_fn_raised():
    context = multiprocessing.get_context("spawn")
    assert run_alone(context, perilous, 2, 0) == 4
    assert run_alone(context, perilous, 3, 0) == Died(-signal.SIGKILL)
    with pytest.raises(ValueError, match="task -1") as caught:
        run_alone(context, perilous, -1, 0)
    assert isinstance(caught.value.__cause__, RemoteTracebackError)
    assert "perilous" in str(caught.value.__cause__)  # the child's traceback


def test_statuses_say_what_is_known():
    assert Died(-signal.SIGKILL).reason() == KILLED.removeprefix("failed:")
    assert Died(-signal.SIGSEGV).reason() == "worker_died (SIGSEGV)"
    assert Died(1).reason() == "worker_died (exit code 1)"
    assert Died(OVER_BUDGET, BUDGET).reason() == "memory_budget (1,200 MiB)"
    assert Died(OVER_BUDGET).reason() == f"worker_died (exit code {OVER_BUDGET})"
    assert OverBudget(3 * 2**30).reason() == "memory_budget (3,072 MiB)"


def test_bad_options_are_usage_errors():
    with pytest.raises(UsageError, match=r"^uplift.memory_per_task == -1, must be >= 0$"):
        map_fits(square, [1], memory_per_task=-1)
    with pytest.raises(UsageError, match=r"^--jobs == 0, must be >= 1$"):
        map_fits(square, [1], 0)
    with pytest.raises(UsageError, match="must be local or ray"):
        map_fits(square, [1], backend="dask")
