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


def pid_peak_mb(pid: int) -> float:
    """The peak RSS in MB of another live process (Spark's driver JVM), 0.0 if unknown."""
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def spark_jvm_peak_mb() -> float:
    """The peak RSS of this process's Spark JVM (local mode: the driver and its executors),
    0.0 when no JVM was started here."""
    try:
        from pyspark import SparkContext
    except ImportError:
        return 0.0
    gateway = getattr(SparkContext, "_gateway", None)
    proc = getattr(gateway, "proc", None)
    return pid_peak_mb(proc.pid) if proc is not None else 0.0
