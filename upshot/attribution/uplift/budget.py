"""How one task runs in a worker process: under a memory budget, or alone, and how it failed.

`run_within(fn, task, budget)` is what a worker runs for a task with a budget of `budget`
bytes (0: none): `fn(task)` while a watchdog thread reads the process's resident memory
(RSS, `/proc/self/statm`) every `POLL_SECONDS`; past the budget it ends the process at
once with exit code `OVER_BUDGET`. A `MemoryError` (the machine itself is out of memory)
is returned as `OverBudget(budget)`. `run_alone(context, fn, task, budget)` runs it in a
process of its own, to isolate a task that may end its worker, and returns `Died(code)`
when that process ends without a result. Both markers give the `<reason>` of the task's
`failed:<reason>` status; `Died(OVER_BUDGET)` reads `memory_budget (N MiB)`.

Why a watchdog that ends the process, not an allocation limit: under `RLIMIT_DATA` a
failed allocation does not always raise. OpenBLAS, for one, retries a failed `mmap`
forever, so a fit over its limit spun at 100% CPU and never returned (seen with
scipy's L-BFGS-B in the uplift fit). Ending the process cannot hang, and the backends
already treat a dead worker as that task's failure. The budget is the worker's whole
resident memory, imports included: about 0.45 GB once a fit has loaded EconML,
scikit-learn and LightGBM (a Ray worker starts at about 0.23 GB). A fit may overshoot
it by what it allocates in one poll interval before it is stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MiB = 2**20
OVER_BUDGET = 77  # the exit code of a worker that its watchdog ended
POLL_SECONDS = 0.02
_PAGE = os.sysconf("SC_PAGE_SIZE")
_STATM = Path("/proc/self/statm")


@dataclass(frozen=True, slots=True)
class OverBudget:
    """What a worker returns when `fn(task)` ran out of its `budget` bytes: a small,
    always picklable marker, where a `MemoryError` (numpy's carries the array's shape)
    might not travel back to the driver intact."""

    budget: int

    def reason(self) -> str:
        return f"memory_budget ({self.budget / MiB:,.0f} MiB)"


@dataclass(frozen=True, slots=True)
class Died:
    """A task's process ended without a result; `exitcode` is negative for a signal,
    `OVER_BUDGET` when its watchdog ended it for passing `budget` bytes."""

    exitcode: int | None
    budget: int = 0

    def reason(self) -> str:
        code = self.exitcode
        if code == OVER_BUDGET and self.budget:
            return OverBudget(self.budget).reason()
        if code is None or code >= 0:
            return f"worker_died (exit code {code})"
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(code)
        # the kernel's OOM killer sends SIGKILL, but so can anyone: say what we cannot tell
        if name == "SIGKILL":
            return "worker_died (SIGKILL; out of memory if the kernel killed it)"
        return f"worker_died ({name})"


def resident_bytes() -> int:
    """This process's resident memory (RSS) in bytes."""
    return int(_STATM.read_bytes().split()[1]) * _PAGE


@contextlib.contextmanager
def memory_watch(budget: int) -> Iterator[None]:
    """For the block, end this process with `OVER_BUDGET` once its RSS passes `budget`."""
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(POLL_SECONDS):
            if resident_bytes() > budget:
                print(
                    f"upshot: worker {os.getpid()} passed its memory budget of "
                    f"{budget / MiB:,.0f} MiB; ending it",
                    file=sys.stderr,
                    flush=True,
                )
                os._exit(OVER_BUDGET)

    watchdog = threading.Thread(target=watch, name="upshot-memory-watch", daemon=True)
    watchdog.start()
    try:
        yield
    finally:
        stop.set()
        watchdog.join()


def run_within(fn: Callable[[Any], Any], task: Any, budget: int) -> Any:
    """`fn(task)` in a process that ends (exit code `OVER_BUDGET`) once its resident
    memory passes `budget` bytes (0: no budget); `OverBudget(budget)` for a
    `MemoryError`. Only for worker processes: the watchdog ends the whole process."""
    if not budget:
        return fn(task)
    try:
        with memory_watch(budget):
            return fn(task)
    except MemoryError:
        # the failed allocation was never made, so there is room to send the marker
        return OverBudget(budget)


def run_alone(context: Any, fn: Callable[[Any], Any], task: Any, budget: int) -> Any:
    """`run_within(fn, task, budget)` in a new process of the multiprocessing `context`:
    its result, or `Died` when the process ended without one. What `fn` raised is raised
    here, with the child's traceback as its cause (as a process pool does)."""
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(sender, fn, task, budget))
    process.start()
    sender.close()  # else recv would never see EOF when the child dies
    try:
        ok, value, trace = receiver.recv()
    except EOFError:
        process.join()
        return Died(process.exitcode, budget)
    finally:
        receiver.close()
    process.join()
    if not ok:
        raise value from RemoteTracebackError(trace)
    return value


class RemoteTracebackError(Exception):
    """The traceback of an exception raised in another process, shown as its cause."""

    def __str__(self) -> str:
        return str(self.args[0])


def _child(sender: Any, fn: Callable[[Any], Any], task: Any, budget: int) -> None:
    try:
        outcome = (True, run_within(fn, task, budget), "")
    except BaseException as exc:  # the driver raises it, as it would from a pool
        outcome = (False, exc, traceback.format_exc())
    try:
        sender.send(outcome)
    except Exception as exc:  # an unpicklable result or exception: say so, not "died"
        from upshot.errors import UpshotError

        sender.send((False, UpshotError(f"cannot send back: {exc!r}"), traceback.format_exc()))
    sender.close()
