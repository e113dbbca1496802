"""`upshot report weekly`: the weekly attribution report from what the warehouse holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from upshot.cli.common import WeekOption, info, state
from upshot.cli.output import Format, FormatOption, JsonOption, emit, resolve

group = typer.Typer(
    name="report",
    help=(
        "Reports for people: the weekly attribution report.\n\n"
        "upshot run writes the report as its last stage; this command rebuilds "
        "it from the warehouse alone (read-only), e.g. after changing the report section "
        "of upshot.toml."
    ),
    no_args_is_help=True,
)


def weekly(
    ctx: typer.Context,
    week: WeekOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder that gets WEEK/. Default: report.directory (reports).",
            show_default=False,
        ),
    ] = None,
    weights_dir: Annotated[
        Path | None,
        typer.Option(
            "--weights-dir",
            help="Where the weight files are. Default: governance.directory (weights).",
            show_default=False,
        ),
    ] = None,
    fmt: FormatOption = Format.table,
    as_json: JsonOption = False,
) -> None:
    """Write reports/WEEK/: index.html, charts/*.png|svg, summary.md and alerts.json.

    index.html is one self-contained file (Vega inlined: it opens without
    network): alerts first, then the headline (incremental conversions, minutes and
    retained days caused by messaging this week, with CIs), uplift per class and objective
    (causal beside naive), value weights and their change, each class's uplift over past
    weeks, reachability, the experiments live that week with verdicts and decompositions,
    and data health. summary.md is the short version for e-mail and chat;
    alerts.json the alerts with severities for paging.

    Privacy: charts and files hold aggregates only, never a row per user; cells about
    fewer than report.k_anonymity users (default 10) are suppressed.

    The estimates come from the week's current `upshot run` when there is one, else from
    the newest uplift and experiment runs of that week. Exit 0 whatever the alerts say;
    `upshot run --fail-on` is the gate.

    Example:

    \b
      upshot report weekly --week 2026-W47 --json
    """
    from upshot import period
    from upshot.reports.weekly import build
    from upshot.store import reading

    st = state(ctx)
    config = st.config
    chosen = (
        period.parse_week(week) if week else period.last_complete(config.report.business_timezone)
    )
    info(f"building the weekly report of {chosen} ...")
    with reading(config, st.db_path) as con:
        report = build(con, config, chosen, directory=out, weights_dir=weights_dir)
    document = report.document()
    counts = document["alerts"]["counts"]
    tables = {
        f"{chosen}: {counts['critical']} critical, {counts['warning']} warning, "
        f"{counts['info']} info": report.alerts.to_dicts(),
        "files": [{"file": str(report.directory / f)} for f in report.files],
    }
    emit(resolve(fmt, as_json), document, tables)
    info(f"report: {report.directory / 'index.html'}")


def register(app: typer.Typer) -> None:
    group.command("weekly")(weekly)
    app.add_typer(group)
