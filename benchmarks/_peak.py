"""Peak resident memory of the calling process alone, for the benchmarks' child processes.

`resource.getrusage(RUSAGE_SELF).ru_maxrss` is not that in a child: Linux copies the
parent's high-water mark into the child at fork and keeps it through exec, so a child
started by a parent that built gigabytes of data reports the parent's peak (the touches
baseline printed ~27 GB where it used ~11). `VmHWM` in /proc/self/status is the
high-water mark of the current address space, which exec replaces: the child's own.
"""

from __future__ import annotations

import resource
from pathlib import Path


def peak_mb() -> float:
    """This process's own peak RSS in MB (VmHWM; ru_maxrss where there is no /proc)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return inherited_mb()


def inherited_mb() -> float:
    """ru_maxrss in MB: at least the parent's peak at fork time (what was printed before)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
