"""`upshot lake export`: write the warehouse's contract tables in the lake layout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from upshot.cli.common import info, state
from upshot.cli.output import FormatOption, JsonOption, emit, resolve

group = typer.Typer(
    name="lake",
    help=(
        "Lake mode: the contract tables read in place (upshot --lake DIR ...).\n\n"
        "`upshot --lake DIR <command>` reads DIR/sends/, DIR/outcomes/, DIR/users/ and "
        "DIR/assignments/ (Parquet, hive-partitioned) instead of the loaded tables; results "
        "still go to the warehouse file. `upshot --lake DIR check` counts the rows the "
        "contract rejects."
    ),
    no_args_is_help=True,
)


def export(
    ctx: typer.Context,
    out: Annotated[Path, typer.Argument(help="Lake folder to write.", show_default=False)],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the Parquet files a table folder holds.")
    ] = False,
    fmt: FormatOption = "table",  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Write the warehouse's sends, outcomes, users and assignments as a lake.

    sends and outcomes are partitioned by the ISO week of decided_at / occurred_at
    (DIR/sends/week=2026-W43/...parquet); users and assignments are one file each.
    The warehouse is only read. --json prints {"path", "tables": [{"table", "rows",
    "files", "path"}]}.

    Example:

    \b
      upshot lake export lake/
      upshot --lake lake/ --db lake.duckdb uplift --week 2026-W43
    """
    from upshot.lake_export import export as write_lake

    st = state(ctx)
    done = write_lake(st.config, st.db_path, str(out), overwrite=overwrite)
    rows = done.to_dicts()
    emit(resolve(fmt, as_json), {"path": done.path, "tables": rows}, {"tables": rows})
    info(f"wrote {sum(done.rows.values()):,} rows to {out}")


def register(app: typer.Typer) -> None:
    group.command("export")(export)
    app.add_typer(group)
