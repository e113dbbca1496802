"""The `upshot` command line: assembles the command groups; no logic of its own.

Every command module registers itself through `register(app)`. Heavy libraries
(EconML, DoWhy, statsmodels, scikit-learn, Altair) are imported only inside the
commands that need them, so `upshot --help` and `upshot status` start fast.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import traceback
from typing import Annotated, Any

import typer
import typer.main

from upshot.cli.common import State
from upshot.errors import EXIT_ERROR, EXIT_USAGE, InterruptError, UpshotError, UsageError
from upshot.interrupts import is_interrupt

app = typer.Typer(
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

# Each module adds its commands; the list is the table of contents of the CLI.
COMMAND_MODULES = (
    "warehouse",  # init, load, status
    "check",
    "simulate",
    "experiments",
    "uplift",
    "weights",
    "touches",
    "longterm",  # surrogate index
    "report",
    "run",  # run, demo
    "lake",  # lake export
)


@app.callback()
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


for _name in COMMAND_MODULES:
    importlib.import_module(f"upshot.cli.{_name}").register(app)


def _help_only(args: list[str]) -> tuple[Any, str] | None:
    """For `upshot <command path> --help`: the command and its program name.

    Run through the root group, a subcommand's `--help` first processes the root options
    (--db, --config), and Typer builds their value coercion with Pydantic, which costs a
    third of the start-up. The subcommand's own `--help` prints the same page (the usage
    line names the same path) without it. Anything else (options before the command,
    other arguments) goes the ordinary way.
    """
    if len(args) < 2 or args[-1] != "--help":
        return None
    command: Any = typer.main.get_command(app)
    for name in args[:-1]:
        command = getattr(command, "commands", {}).get(name)
        if command is None:
            return None
    return command, " ".join(["upshot", *args[:-1]])


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
        help_of = _help_only(args)
        if help_of is not None:
            help_of[0].main(["--help"], prog_name=help_of[1])
        app(args=args, prog_name="upshot")
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
