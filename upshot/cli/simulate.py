"""`upshot simulate`: write a synthetic messaging world with known ground truth."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from upshot.cli.common import info
from upshot.cli.output import FormatOption, JsonOption, emit, resolve
from upshot.errors import UsageError


def simulate(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Folder to write. Must be empty, new, or a previous simulation "
            "(it has a truth.json), which is replaced.",
            show_default=False,
        ),
    ],
    users: Annotated[int, typer.Option("--users", help="Number of users.")] = 20_000,
    weeks: Annotated[
        int, typer.Option("--weeks", help="Decision weeks; outcomes run 2 weeks longer.")
    ] = 4,
    seed: Annotated[int, typer.Option("--seed", help="Seed: same seed, same files.")] = 7,
    start: Annotated[
        str, typer.Option("--start", help="First decision day, a Monday (YYYY-MM-DD).")
    ] = "2026-10-19",
    dirty: Annotated[
        bool,
        typer.Option(
            "--dirty",
            help="Sends as CSV and outcomes as NDJSON.gz with duplicates, malformed rows, "
            "naive and +05:30 timestamps and late events, for exercising `upshot load`.",
        ),
    ] = False,
    longterm: Annotated[
        bool,
        typer.Option(
            "--longterm",
            help="Add a history cohort 34 weeks before --start whose 180-day outcomes are in "
            "the data, and the true long-term effect of every class in truth.json "
            "(longterm, longterm_by_week); resume_watching_push harms long-term retention "
            "in a way its 7-day effects do not show. The rest of the world is unchanged.",
        ),
    ] = False,
    fmt: FormatOption = "table",  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Write a synthetic messaging world whose causal effects are known exactly.

    8 message classes over push, email, in-app and WhatsApp are targeted at active users
    (so naive sent-minus-held-out comparisons are biased) with a 30% randomized holdout;
    3 A/B tests run on random users. The files follow the input contract, ready for
    upshot load: users.parquet, assignments.parquet, and sends/ and outcomes/
    partitioned by day (date=YYYY-MM-DD/, and sends also by channel=C/, a column that
    then lives in the folder name only, as hive writers leave it). truth.json holds the
    true effect of every class on every objective (overall, per ISO week and per segment),
    of every experiment variant on every metric, and the planted classes: one that harms
    reachability and one with exactly zero effect.

    Example:

    \b
      upshot simulate --out demo_out --users 5000 --weeks 2 --seed 1
    """
    from upshot.simulate import simulate as write_world

    try:
        first = date.fromisoformat(start)
    except ValueError:
        raise UsageError(f"--start == {start!r}, must be a date YYYY-MM-DD") from None
    info(f"simulating {users} users over {weeks} weeks from {first} (seed {seed}) into {out}")
    summary = write_world(
        out, users=users, weeks=weeks, seed=seed, start=first, dirty=dirty, longterm=longterm
    )
    document = summary.to_dict()
    rows = [
        {"table": name, "rows": summary.rows[name], "files": summary.files[name]}
        for name in ("users", "sends", "outcomes", "assignments")
    ]
    tables: dict[str, list[dict[str, Any]]] = {
        "tables": rows,
        "classes": summary.classes,
        "experiments": summary.experiments,
    }
    emit(resolve(fmt, as_json), document, tables, main="tables")
    info(f"wrote {out} in {summary.seconds:.1f}s; the ground truth is in {out / 'truth.json'}")


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
