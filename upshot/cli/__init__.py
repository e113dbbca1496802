"""The `upshot` command line: assembles the command groups; no logic of its own.

Every command module registers itself through `register(app)`. Heavy libraries
(EconML, DoWhy, statsmodels, scikit-learn, Altair) are imported only inside the
commands that need them, so `upshot --help` and `upshot status` start fast. A help page
imports only the command module it shows and builds only its own Click command
(`_help_only`); `app` (the whole tree) is assembled on first use.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import os
import signal
import sys
import traceback
from collections.abc import Iterable
from typing import Annotated, Any

import typer
import typer.main

from upshot.cli.common import State
from upshot.errors import EXIT_ERROR, EXIT_USAGE, InterruptError, UpshotError, UsageError
from upshot.interrupts import is_interrupt

_app = typer.Typer(
    name="upshot",
    help=(
        "Causal attribution and experimentation for messaging platforms.\n\n"
        "Load send and outcome logs into a DuckDB warehouse, estimate the causal uplift of "
        "every message class, analyse A/B tests, and export value weights for ranking."
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    rich_markup_mode=None,
)

# Each module adds its commands; the table of contents of the CLI, in order, with the
# top-level names each module registers (a help page imports only the one it shows).
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "warehouse": ("init", "load", "status"),
    "check": ("check",),
    "simulate": ("simulate",),
    "experiments": ("experiments",),
    "uplift": ("uplift",),
    "weights": ("weights",),
    "touches": ("touches",),
    "longterm": ("longterm",),  # surrogate index
    "report": ("report",),
    "run": ("run", "demo"),
    "lake": ("lake",),  # lake export
}


@_app.callback()
def _root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Warehouse file. Overrides $UPSHOT_DB and upshot.toml; default upshot.duckdb.",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option("--config", help="Config file; default ./upshot.toml when present."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    lake: Annotated[
        str | None,
        typer.Option(
            "--lake",
            help="Read sends, outcomes, users and assignments in place from DIR/<table>/ "
            "(Parquet, hive-partitioned) instead of the loaded tables. Overrides [lake] path.",
            metavar="DIR",
            show_default=False,
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="Where population-wide passes run: duckdb or spark. Overrides [engine] kind.",
            show_default=False,
        ),
    ] = None,
) -> None:
    ctx.obj = State(db=db, config_path=config, debug=debug, lake=lake, engine=engine)
    if engine is not None:
        _check_engine(engine, None if _ASKED_HELP[0] else ctx.invoked_subcommand)


# the command groups with a pass on another engine; `--engine spark` on any other command
# is refused rather than ignored ([engine] kind in upshot.toml applies where it can)
ENGINE_COMMANDS = ("check", "experiments", "touches", "uplift")
_ASKED_HELP = [False]  # set by `main`: a help page is shown whatever the engine


def _check_engine(engine: str, command: str | None) -> None:
    from upshot.engines import KINDS

    if engine not in KINDS:
        raise UsageError(f"--engine {engine}: must be one of {', '.join(KINDS)}")
    if engine != "duckdb" and command is not None and command not in ENGINE_COMMANDS:
        raise UsageError(
            f"--engine {engine}: `upshot {command}` runs on DuckDB only "
            f"(on {engine}: {', '.join(ENGINE_COMMANDS)}; see docs/engines.md)"
        )


# the module that registered each of the root's commands and groups, by position
_OWNER: list[tuple[int, Any]] = []


def _register(modules: Iterable[str]) -> typer.Typer:
    """The root app with `modules`' commands registered (each module once). Whatever
    order they come in, the root's commands and groups stay in `COMMAND_MODULES` order:
    Typer lists them in registration order."""
    order = list(COMMAND_MODULES)
    done = {rank for rank, _ in _OWNER}
    for name in modules:
        rank = order.index(name)
        if rank in done:
            continue
        before = {id(i) for i in [*_app.registered_commands, *_app.registered_groups]}
        importlib.import_module(f"upshot.cli.{name}").register(_app)
        done.add(rank)
        _OWNER.extend(
            (rank, i)
            for i in [*_app.registered_commands, *_app.registered_groups]
            if id(i) not in before
        )
    ranks = {id(i): rank for rank, i in _OWNER}
    _app.registered_commands.sort(key=lambda i: ranks[id(i)])
    _app.registered_groups.sort(key=lambda i: ranks[id(i)])
    return _app


def __getattr__(name: str) -> typer.Typer:
    """`app`: the root Typer app with every command (`from upshot.cli import app`)."""
    if name == "app":
        return _register(COMMAND_MODULES)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _help_only(args: list[str]) -> tuple[Any, str] | None:
    """For `upshot [<command path>] --help`: the command and its program name.

    Run through the root group, a subcommand's `--help` first processes the root options
    (--db, --config), and Typer builds their value coercion with Pydantic, which costs a
    third of the start-up; and Typer builds the Click command of every command, each
    from its signature, which costs another third. The page is the same built alone:
    the command's module only is imported and its Click command only is built (a group:
    with its commands; the root: each group without its commands, which its page does
    not show). Anything else (options before the command, other arguments) goes the
    ordinary way.
    """
    if not args or args[-1] != "--help":
        return None
    path = args[:-1]
    if not path:
        return _shallow_root(), "upshot"
    module = next((m for m, names in COMMAND_MODULES.items() if path[0] in names), None)
    if module is None:
        return None
    command = _click_command(_register([module]), path)
    return (command, " ".join(["upshot", *path])) if command is not None else None


def _build_options() -> dict[str, Any]:
    """What Typer passes down from the root when it builds a command."""
    return {
        "pretty_exceptions_short": _app.pretty_exceptions_short,
        "rich_markup_mode": _app.rich_markup_mode,
    }


def _click_command(parent: typer.Typer, path: list[str]) -> Any:
    """The Click command at `path` under `parent`, built as `typer.main.get_command`
    builds it; None if there is no such command."""
    name, rest = path[0], path[1:]
    for info in parent.registered_commands:
        callback = info.callback
        if callback is not None and (info.name or typer.main.get_command_name(
            callback.__name__
        )) == name:  # fmt: skip
            return None if rest else typer.main.get_command_from_info(info, **_build_options())
    for group in parent.registered_groups:
        if typer.main.solve_typer_info_defaults(group).name != name:
            continue
        if rest:
            sub = group.typer_instance
            return _click_command(sub, rest) if sub is not None else None
        return typer.main.get_group_from_info(
            group, suggest_commands=_app.suggest_commands, **_build_options()
        )
    return None


def _no_options() -> None:
    """A stand-in callback: the root page shows a command's name and help only."""


def _shallow_root() -> Any:
    """The root group for its help page: the root options and every command and group
    with its name and help, none of their own options or commands built."""
    root = copy.copy(_register(COMMAND_MODULES))
    root.registered_commands = []
    for info in _app.registered_commands:
        shallow = copy.copy(info)
        callback = info.callback
        if callback is not None:
            shallow.name = info.name or typer.main.get_command_name(callback.__name__)
            shallow.help = inspect.getdoc(callback) if info.help is None else info.help
            shallow.callback = _no_options
        root.registered_commands.append(shallow)
    root.registered_groups = []
    for group in _app.registered_groups:
        shallow_group = copy.copy(group)
        if group.typer_instance is not None:
            empty = copy.copy(group.typer_instance)
            empty.registered_commands, empty.registered_groups = [], []
            shallow_group.typer_instance = empty
        root.registered_groups.append(shallow_group)
    return typer.main.get_group(root)


def _interrupt(signum: int, frame: object) -> None:  # noqa: ARG001
    raise InterruptError("interrupted")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: the one error boundary that maps errors to exit codes.

    Typer runs in standalone mode, so usage errors exit 2 with its message and `--help`
    exits 0; every `UpshotError` becomes one line `Error: ...` and its exit code.
    """
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or os.environ.get("UPSHOT_DEBUG") == "1"
    # a KeyboardInterrupt would be turned into exit 1 by click; ours exits 130
    signal.signal(signal.SIGINT, _interrupt)
    _ASKED_HELP[0] = "--help" in args
    try:
        _main(args, debug)
    finally:
        if argv is None:
            # the process's own run is over and its exit code chosen: a Ctrl-C while the
            # interpreter shuts down (DuckDB closing and checkpointing the warehouse, all
            # committed) would otherwise kill it by the signal, no message, exit -2
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _main(args: list[str], debug: bool) -> None:
    try:
        help_of = _help_only(args)
        if help_of is not None:
            help_of[0].main(["--help"], prog_name=help_of[1])
        _register(COMMAND_MODULES)(args=args, prog_name="upshot")
    except UpshotError as exc:
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"Error: {exc}\n")
        sys.exit(exc.exit_code)
    except OSError as exc:
        if debug:
            traceback.print_exc()
        # a raw OSError names the file in its repr; say it plainly, and what to do
        where = f"{exc.filename}: " if exc.filename else ""
        missing = isinstance(exc, FileNotFoundError | NotADirectoryError | IsADirectoryError)
        hint = (
            "check that the path and its folders exist"
            if missing
            else "check its permissions, the free disk space, and that no other program holds it"
        )
        sys.stderr.write(f"Error: {where}{exc.strerror or exc}; {hint}\n")
        sys.exit(EXIT_USAGE if missing else EXIT_ERROR)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        if is_interrupt(exc):  # Ctrl-C inside a DuckDB query comes back as its own error
            sys.stderr.write(f"Error: {InterruptError('interrupted')}\n")
            sys.exit(InterruptError.exit_code)
        if not debug:
            sys.stderr.write("(run with --debug for the traceback)\n")
        first = str(exc).splitlines()[0] if str(exc) else ""
        sys.stderr.write(f"Error: {type(exc).__name__}: {first}\n")
        sys.exit(EXIT_ERROR)
