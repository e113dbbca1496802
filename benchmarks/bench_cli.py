"""Start-up time of `upshot <command> --help` for every command, each in a fresh process.

    python benchmarks/bench_cli.py [--repeat 5] [--only "experiments analyze"] [--baseline REF]

Runs `python -m upshot <command> --help` as a new process (min and median of `--repeat`
runs, the commands interleaved round by round) in two modes, each on its own copy of
the package: with PYTHONDONTWRITEBYTECODE=1 and no `__pycache__` in the copy, so every
upshot module is compiled from source (the case the target is about: <= 0.25 s), and
with bytecode (the copy's `__pycache__` warmed first, the usual installed case). The
command list is read from the Typer app, so new commands are timed too. Prints the load
average, every command's figures (wall seconds, and CPU seconds, which a busy machine
inflates less) and the worst of each mode. `--baseline REF` times the
package as of a git commit too, interleaved with the working tree's, and prints the ratio
(on a busy machine the ratio is steadier than the seconds).
"""

from __future__ import annotations

import argparse
import os
import resource
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


def once(command: str, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system: steadier on a busy machine) of one
    `upshot <command> --help` in a fresh process."""
    args = [sys.executable, "-m", "upshot", *command.split(), "--help"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    # run in the copy's folder: `-m` puts the working directory first on sys.path
    cwd = env["PYTHONPATH"]
    subprocess.run(args, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu


def _copy(source: Path | None, root: Path, ref: str | None, folder: str) -> None:
    """The package into `folder`: the working tree's, or `ref`'s from git; no bytecode."""
    if ref is None:
        shutil.copytree(
            root / "upshot", Path(folder) / "upshot", ignore=shutil.ignore_patterns("__pycache__")
        )
        return
    archive = subprocess.run(
        ["git", "-C", str(source or root), "archive", ref, "upshot"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", action="append", help="time only this command (repeatable)")
    parser.add_argument(
        "--baseline",
        metavar="GIT_REF",
        help="also time the package as of this commit, interleaved, and print the ratios",
    )
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    names = args.only or commands()
    base = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    base["COLUMNS"] = "100"
    versions = {"now": None, **({"baseline": args.baseline} if args.baseline else {})}
    with tempfile.TemporaryDirectory() as scratch:
        # a copy of the package per version and mode, so that no .pyc of upshot's own can
        # be read in the cold mode (the installed libraries keep theirs, as anywhere)
        modes: dict[str, dict[str, str]] = {}
        for version, ref in versions.items():
            for mode in ("no bytecode", "bytecode"):
                folder = Path(scratch) / version / mode.replace(" ", "_")
                folder.mkdir(parents=True)
                _copy(None, root, ref, str(folder))
                env = {**base, "PYTHONPATH": str(folder)}
                if mode == "no bytecode":
                    env["PYTHONDONTWRITEBYTECODE"] = "1"
                modes[f"{version}, {mode}" if args.baseline else mode] = env
        for name in names:  # warm the bytecode caches (and check every command works)
            for label, env in modes.items():
                if "no bytecode" not in label:
                    once(name, env)
        times: dict[tuple[str, str], list[float]] = {}
        cpus: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeat):
            for name in names:
                for label, env in modes.items():
                    wall, cpu = once(name, env)
                    times.setdefault((label, name), []).append(wall)
                    cpus.setdefault((label, name), []).append(cpu)
        for label, env in modes.items():
            if "no bytecode" in label:
                stray = list(Path(env["PYTHONPATH"]).rglob("__pycache__"))
                assert not stray, f"bytecode was written in a cold copy: {stray[0]}"
    load = os.getloadavg()
    print(
        f"python {sys.version.split()[0]}; {len(names)} commands x {args.repeat} runs per mode; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        + (f"; baseline {args.baseline}" if args.baseline else "")
    )
    width = max(len(label) for label in modes)
    print(
        f"{'command':28} {'mode':{width}} {'min s':>7} {'median s':>9} {'cpu min':>8} "
        f"{'cpu median':>10}"
    )
    for (label, name), values in sorted(times.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        cpu = cpus[(label, name)]
        print(
            f"{name or '(root)':28} {label:{width}} {min(values):7.3f} "
            f"{statistics.median(values):9.3f} {min(cpu):8.3f} {statistics.median(cpu):10.3f}"
        )
    for label in modes:
        worst = max(names, key=lambda n: statistics.median(times[(label, n)]))
        values = times[(label, worst)]
        worst_cpu = max(names, key=lambda n: statistics.median(cpus[(label, n)]))
        cpu = cpus[(label, worst_cpu)]
        print(
            f"worst, {label}: {worst or '(root)'} --help min {min(values):.3f}s "
            f"median {statistics.median(values):.3f}s (target <= {TARGET_SECONDS}s without "
            f"bytecode); by CPU: {worst_cpu or '(root)'} min {min(cpu):.3f}s median "
            f"{statistics.median(cpu):.3f}s"
        )
    if args.baseline:
        for mode in ("no bytecode", "bytecode"):
            ratios = [
                statistics.median(times[(f"now, {mode}", n)])
                / statistics.median(times[(f"baseline, {mode}", n)])
                for n in names
            ]
            print(
                f"ratio now / baseline, {mode} (median per command): "
                f"{statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f})"
            )


if __name__ == "__main__":
    main()
