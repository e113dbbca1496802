"""`upshot init`, `upshot load`, `upshot status`: getting logs into the warehouse."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from upshot.cli.common import info, progress_enabled, state
from upshot.cli.output import FormatOption, JsonOption, emit, resolve
from upshot.errors import DataQualityError, LoadIncompleteError, UsageError

if TYPE_CHECKING:
    from upshot.load import LoadReport


class Table(StrEnum):
    sends = "sends"
    outcomes = "outcomes"
    users = "users"
    assignments = "assignments"


def init(
    path: Annotated[Path, typer.Argument(help="Where to write the config.")] = Path("upshot.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented upshot.toml holding every default, ready to edit."""
    if path.exists() and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite it")
    text = resources.files("upshot.templates").joinpath("upshot.toml").read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    info(f"wrote {path}")


def load(
    ctx: typer.Context,
    table: Annotated[Table, typer.Argument(help="The contract table the files hold.")],
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Files, globs or directories (searched recursively, e.g. hive-partitioned "
            "date=2026-11-16/ folders); .parquet, .csv[.gz], .ndjson[.gz]; s3:// URLs read "
            "through DuckDB's httpfs with credentials from the environment.",
            show_default=False,
        ),
    ],
    max_reject_rate: Annotated[
        float | None,
        typer.Option(
            "--max-reject-rate",
            help="Quarantined share of a file above which the load exits with code 3 "
            "(good rows still load). Default from upshot.toml: 0.01.",
            show_default=False,
        ),
    ] = None,
    partition: Annotated[
        list[str] | None,
        typer.Option(
            "--partition",
            help="Load only files under this KEY=VALUE hive folder, e.g. channel=push; "
            "repeat it for several values (--partition channel=push --partition channel=email).",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        datetime | None,
        typer.Option(
            "--since",
            formats=["%Y-%m-%d"],
            help="Load only files under a date=YYYY-MM-DD folder (or dt=, day=) on or after it.",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(
            "--until",
            formats=["%Y-%m-%d"],
            help="Load only files under a date= folder on or before it.",
            show_default=False,
        ),
    ] = None,
    column_map: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="CONTRACT=FILE: read the contract column from the files' column of another "
            "name, e.g. --map decided_at=sent_at; repeat it. Overrides [load.columns.TABLE].",
            show_default=False,
        ),
    ] = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="users only: the files are the truth for the user_ids they hold (their "
            "columns overwrite the stored values, new columns are added); default: append.",
        ),
    ] = False,
    fmt: FormatOption = "table",  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Validate and append log files to the warehouse.

    Each file loads in one transaction: all of its good rows, or nothing. Rows that break
    the contract go to the quarantine table with the reason; rows whose
    send_id / event_id already exist are skipped; a file whose content was loaded before
    (under any name) is skipped whole, and so is a partition already loaded.

    Hive folders are data: a contract column the files lack (channel under
    channel=push/) is read from its folder, and a row whose value differs from its
    folder's is quarantined as partition_mismatch. --partition, --since and --until
    prune by folder names alone, before any file is opened.

    Columns are matched by name, case-insensitively; --map (or [load.columns.TABLE] in
    upshot.toml) reads a contract column from a column of another name. `treated` and
    `randomized` accept true/false, yes/no, y/n, t/f and 1/0.

    Exit code 3 when a file's quarantined share exceeds --max-reject-rate, 4 when
    another writer holds the warehouse.
    """
    from upshot.load import load as load_files
    from upshot.partitions import Pruning

    st = state(ctx)
    pruning = Pruning.parse(
        partition or [], since.date() if since else None, until.date() if until else None
    )
    on_file, done = _progress(table.value)
    try:
        report = load_files(
            st.db_path,
            table.value,
            paths,
            config=st.config,
            max_reject_rate=max_reject_rate,
            on_file=on_file,
            pruning=pruning,
            columns=_parse_map(column_map or []),
            replace=replace,
        )
        gate_error: Exception | None = None
    except (DataQualityError, LoadIncompleteError) as exc:
        # the files that loaded are committed: print them, then exit non-zero
        report, gate_error = exc.report, exc  # type: ignore[assignment]
    finally:
        done()
    _print_report(report, resolve(fmt, as_json))
    if gate_error is not None:
        raise gate_error


def _parse_map(items: list[str]) -> dict[str, str]:
    """`--map decided_at=sent_at` (repeated) as {contract column: file column}."""
    out = {}
    for item in items:
        target, sep, source = item.partition("=")
        if not sep or not target.strip() or not source.strip():
            raise UsageError(f"--map {item!r}, must look like decided_at=sent_at")
        out[target.strip()] = source.strip()
    return out


def _progress(table: str) -> tuple[Any, Any]:
    """A per-file progress bar on stderr when it is a terminal; silent otherwise."""
    if not progress_enabled():
        return None, lambda: None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(
        TextColumn(f"loading {table}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}", markup=False),  # a file name is not markup
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("", total=None)
    bar.start()

    def on_file(i: int, n: int, path: str) -> None:
        bar.update(task, completed=i, total=n, description=Path(path).name)

    return on_file, bar.stop


def _print_report(report: LoadReport, fmt: Any) -> None:
    document = report.document()
    totals = document["totals"]
    tables = {
        f"{report.table}: files": report.to_dicts(),
        "quarantined by reason": [
            {"reason": r, "rows": n} for r, n in totals["quarantined_by_reason"].items()
        ],
    }
    emit(fmt, document, tables)
    if report.pruned:
        info(f"{report.pruned} file(s) left out by their partition folders")
    skipped = sum(1 for f in report.files if f.status == "already_loaded")
    if skipped:
        info(f"{skipped} file(s) already loaded before (same content): nothing added from them")


def status(
    ctx: typer.Context,
    loads: Annotated[int, typer.Option("--loads", help="How many recent loads to list.")] = 10,
    fmt: FormatOption = "table",  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """What the warehouse holds: rows and time ranges per table, message classes and
    channels, experiments and arms, quarantined rows by reason, and the last loads.

    Opens the warehouse read-only: it never waits for a writer's lock.
    """
    from upshot.status import status as describe
    from upshot.store import reading

    st = state(ctx)
    with reading(st.config, st.db_path) as con:
        document = {"db": st.db_path, **describe(con, loads=loads)}
    tables = {
        "tables": document["tables"],
        "message classes": document["classes"],
        "experiments": document["experiments"],
        "quarantine": document["quarantine"],
        "last loads": document["loads"],
    }
    emit(resolve(fmt, as_json), document, tables, main="tables")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("load")(load)
    app.command("status")(status)
