"""`upshot check`: whether the warehouse can answer what upshot.toml asks."""

from __future__ import annotations

import typer

from upshot.cli.common import info, state
from upshot.cli.output import FormatOption, JsonOption, emit, resolve


def check(
    ctx: typer.Context,
    fmt: FormatOption = "table",  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Check that the loaded data can answer what upshot.toml asks, and say what to change.

    Checks: the share of the sends' user ids found in outcomes and in users (warning
    under 90%, error under 10%, with an example id of each side); events named by an
    objective or metric that outcomes never contain (with the closest events that
    exist); classes without hold-out decisions; non-randomized classes with neither a
    logged propensity nor pre-period covariates; objective windows reaching past the
    last outcome; timestamps loaded without a zone; covariates mostly NULL;
    experiments without outcomes.

    --json prints {"checks": [{"name", "status", "detail", ...}]}, status ok, warning
    or error. Exit code 3 when any check is an error, else 0. `upshot run` runs the
    same checks first and stops on an error unless --fail-on never.
    """
    from upshot.check import run_check

    st = state(ctx)
    # --engine spark: the lake's checked views on Spark (the same counts as DuckDB's)
    report = run_check(st.config, st.db_path, st.lake_engine("check"))
    emit(resolve(fmt, as_json), report.document(), {"checks": report.to_dicts()})
    if report.exit_code:
        info(f"exit {report.exit_code}: {report.summary()}")
        raise typer.Exit(report.exit_code)


def register(app: typer.Typer) -> None:
    app.command("check")(check)
