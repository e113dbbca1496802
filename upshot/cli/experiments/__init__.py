"""`upshot experiments list | analyze | decide | decompose | plan`: A/B tests.

A thin layer over `upshot.experiments`: parse flags, run, print. The statistics live in
the library; heavy imports happen inside the commands. `options` holds the shared flags,
`analyze` the effect and verdict commands, `design` decomposition and power.
"""

from __future__ import annotations

import typer

from upshot.cli.experiments.analyze import analyze, decide, list_
from upshot.cli.experiments.design import decompose, plan

group = typer.Typer(
    name="experiments",
    help=(
        "Analyse A/B tests from sufficient statistics: effects with CIs (Welch, proportions, "
        "CUPED, ratios), SRM, multiple-testing corrections, a risk-aware ship verdict, "
        "metric decompositions and power.\n\n"
        "Each command reads either the warehouse (an experiment id: assignments joined to "
        "outcomes, metrics from upshot.toml) or a user-level file (--table: one row per "
        "user, a variant column and metric columns). One SQL pass computes per-arm sums, "
        "sums of squares and cross-products; no user rows leave DuckDB."
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    group.command("list")(list_)
    group.command("analyze")(analyze)
    group.command("decide")(decide)
    group.command("decompose")(decompose)
    group.command("plan")(plan)
    app.add_typer(group, name="experiments")
