"""Start-up time of `upshot <command> --help` for every command, each in a fresh process.

    python benchmarks/bench_cli.py [--repeat 5] [--only "experiments analyze"]

Runs `python -m upshot <command> --help` as a new process (min and median of `--repeat`
runs, the commands interleaved round by round) in two modes, each on its own copy of
the package: with PYTHONDONTWRITEBYTECODE=1 and no `__pycache__` in the copy, so every
upshot module is compiled from source (the case the target is about: <= 0.25 s), and
with bytecode (the copy's `__pycache__` warmed first, the usual installed case). The
command list is read from the Typer app, so new commands are timed too. Prints the load
average, every command's figures and the worst of each mode.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_SECONDS = 0.25


def commands() -> list[str]:
    """Every command path of the CLI ("" is the root), from the Click tree Typer builds."""
    import typer.main

    from upshot.cli import app

    out: list[str] = []

    def walk(command: Any, path: list[str]) -> None:  # Typer vendors its own Click
        out.append(" ".join(path))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return out


def once(command: str, env: dict[str, str]) -> float:
    args = [sys.executable, "-m", "upshot", *command.split(), "--help"]
    started = time.perf_counter()
    # run in the copy's folder: `-m` puts the working directory first on sys.path
    cwd = env["PYTHONPATH"]
    subprocess.run(args, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", action="append", help="time only this command (repeatable)")
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    names = args.only or commands()
    base = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    base["COLUMNS"] = "100"
    with tempfile.TemporaryDirectory() as cold_dir, tempfile.TemporaryDirectory() as warm_dir:
        # a copy of the package per mode, so that no .pyc of upshot's own can be read in
        # the cold mode (the installed libraries keep theirs, as in any environment)
        for folder in (cold_dir, warm_dir):
            shutil.copytree(
                root / "upshot",
                Path(folder) / "upshot",
                ignore=shutil.ignore_patterns("__pycache__"),
            )
        modes = {
            "no bytecode": {**base, "PYTHONPATH": cold_dir, "PYTHONDONTWRITEBYTECODE": "1"},
            "bytecode": {**base, "PYTHONPATH": warm_dir},
        }
        for name in names:  # warm the bytecode cache (and check every command works)
            once(name, modes["bytecode"])
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeat):
            for name in names:
                for mode, env in modes.items():
                    times.setdefault((mode, name), []).append(once(name, env))
        stray = list(Path(cold_dir).rglob("__pycache__"))
        assert not stray, f"bytecode was written in the cold copy: {stray[0]}"
    load = os.getloadavg()
    print(
        f"python {sys.version.split()[0]}; {len(names)} commands x {args.repeat} runs per mode; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(f"{'command':28} {'mode':12} {'min s':>7} {'median s':>9}")
    for (mode, name), values in sorted(times.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        label = name or "(root)"
        print(f"{label:28} {mode:12} {min(values):7.3f} {statistics.median(values):9.3f}")
    for mode in modes:
        worst = max((n for n in names), key=lambda n: statistics.median(times[(mode, n)]))
        values = times[(mode, worst)]
        print(
            f"worst, {mode}: {worst or '(root)'} --help min {min(values):.3f}s "
            f"median {statistics.median(values):.3f}s (target <= {TARGET_SECONDS}s without "
            "bytecode)"
        )


if __name__ == "__main__":
    main()
