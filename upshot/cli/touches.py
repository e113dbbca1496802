"""`upshot touches`: touch-based conversion credit beside causal incrementality."""

from __future__ import annotations

import dataclasses
import math
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from upshot.cli.common import info, state
from upshot.cli.output import Format, FormatOption, JsonOption, emit, resolve

if TYPE_CHECKING:
    from upshot.attribution.touches.attribute import TouchAttribution

# paragraphs are single lines so that rich wraps them to the terminal
HELP = "\n\n".join(
    (
        "Which channels (or message classes) get the credit for conversions.",
        (
            "Six touch-based methods split conversions over the touches (treated sends) before "
            "them: first_touch, last_touch, linear (an equal split, repeats counted), time_decay "
            "(a touch's weight halves every --half-life before the conversion), markov (removal "
            "effects of the order-K chain, solved exactly) and shapley (exact Shapley values of "
            "the channels). Each method's credits add up to the touched conversions."
        ),
        (
            "Beside them, the causal column: incremental conversions from the newest `upshot "
            "uplift` run (uplift x treated sends, with 95% CIs). Where the two disagree, believe "
            "the causal column: touch credit says who was there, not who made the difference "
            "(last touch usually over-credits the channel that fires just before a conversion)."
        ),
        (
            "Journeys come from the warehouse (each conversion of the period with the touches "
            "inside --lookback before it, plus the period's touches that led to none) or from a "
            "ChannelAttribution path table given with --paths (columns path, total_conversions, "
            "total_null, optional total_conversion_value; no warehouse, so no time_decay and no "
            "causal column). Warehouse results are stored in touch_credits with a run id."
        ),
        "Examples:",
        (
            "\b\n"  # click keeps a paragraph that starts with \b as written
            "  upshot touches --week 2026-W47 --json\n"
            "  upshot touches --by class --lookback 3d --markov-order 2\n"
            "  upshot touches --paths paths.csv --json"
        ),
    )
)


class By(StrEnum):
    channel = "channel"
    class_ = "class"


def register(app: typer.Typer) -> None:
    app.command("touches", help=HELP)(touches)


def touches(
    ctx: typer.Context,
    paths: Annotated[
        Path | None,
        typer.Option(
            "--paths",
            help="A path table (CSV with any delimiter, Parquet or NDJSON) to attribute "
            "instead of the warehouse.",
            show_default=False,
        ),
    ] = None,
    by: Annotated[
        By, typer.Option("--by", help="Credit channels (push, email, ...) or message classes.")
    ] = By.channel,
    week: Annotated[
        str | None, typer.Option("--week", help="Conversions of one ISO week, e.g. 2026-W47 (UTC).")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="Conversions from this date/time (UTC).")
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--end", help="Conversions before this date/time (exclusive, UTC)."),
    ] = None,
    lookback: Annotated[
        str | None,
        typer.Option(
            "--lookback",
            help="How far before a conversion a touch counts, e.g. 7d or 48h. Default: the "
            "conversion objective's window in upshot.toml (7d).",
            show_default=False,
        ),
    ] = None,
    half_life: Annotated[
        str, typer.Option("--half-life", help="time_decay: a touch's weight halves per this.")
    ] = "7d",
    markov_order: Annotated[
        int,
        typer.Option(
            "--markov-order",
            help="markov: states are the last K touches (1 to 4); higher orders need more data.",
        ),
    ] = 1,
    method: Annotated[
        list[str] | None,
        typer.Option(
            "--method",
            help="Only these methods (repeat the option): first_touch, last_touch, linear, "
            "time_decay, markov, shapley. Default: all that apply.",
            show_default=False,
        ),
    ] = None,
    store: Annotated[
        bool,
        typer.Option(
            "--store/--no-store",
            help="Record the credits in the warehouse (--no-store: read it read-only instead).",
        ),
    ] = True,
    fmt: FormatOption = Format.table,
    as_json: JsonOption = False,
) -> None:
    from upshot import period
    from upshot.attribution.touches import attribute as lib
    from upshot.errors import UsageError

    fmt = resolve(fmt, as_json)
    methods = tuple(method) if method else None
    if paths is not None:
        if week or start or end or lookback:
            raise UsageError(
                "--paths has no touch times: --week/--start/--end/--lookback apply "
                "to the warehouse only"
            )
        result = lib.from_paths(
            paths, by=by.value, markov_order=markov_order, methods=methods or lib.PATH_METHODS
        )
    else:
        options = {
            "by": by.value,
            "span": period.parse(week, start, end),
            "lookback": lookback,
            "half_life": half_life,
            "markov_order": markov_order,
            "methods": methods or lib.METHODS,
        }
        result = _from_warehouse(ctx, options, store=store)
    if result.table.total_conversions == 0:
        info("note: no touched conversions in this period; every credit is zero")
    _print(fmt, result)


def _from_warehouse(
    ctx: typer.Context, options: dict[str, Any], *, store: bool
) -> TouchAttribution:
    from upshot import store as warehouse
    from upshot.attribution.touches import attribute as lib
    from upshot.attribution.touches.persist import store_credits
    from upshot.errors import UsageError

    st = state(ctx)
    config, db = st.config, st.db_path
    # on Spark the journeys and the treated sends are counted over the lake's files; the
    # uplift estimates of the causal column still come from the DuckDB file
    options = options | {"engine": st.lake_engine("touches")}
    if not store:
        with warehouse.reading(config, db) as con:
            return lib.from_warehouse(con, config, **options)
    # in lake mode the tables are the lake's: a new warehouse file only holds the results
    if db != ":memory:" and not Path(db).exists() and not config.lake.path:
        raise UsageError(f"{db}: no warehouse here yet; run `upshot load` first")
    with warehouse.writing(config, db, "touches") as con:
        run_id = warehouse.start_run(
            con, "touches", config, inputs_fingerprint=warehouse.inputs_fingerprint(con)
        )
        try:
            result = dataclasses.replace(lib.from_warehouse(con, config, **options), run_id=run_id)
            with warehouse.transaction(con):
                stored = store_credits(con, result, run_id)
        except BaseException as exc:
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            warehouse.finish_run(con, run_id, "failed", {"error": reason})
            raise
        details = {"by": options["by"], "week": options["span"].week, "rows": stored}
        warehouse.finish_run(con, run_id, "ok", details)
    info(f"stored {stored} rows in touch_credits (run {run_id})")
    return result


def _print(fmt: Format, result: TouchAttribution) -> None:
    if fmt is not Format.table:
        emit(fmt, result.document(), {"credits": result.to_dicts()}, main="credits")
        return
    key = result.by
    methods = [c.method for c in result.credits]
    pivot: dict[str, dict[str, Any]] = {}

    def entry(item: str) -> dict[str, Any]:
        # every row has every column, in one order, so the table lines up
        blank = {key: item} | dict.fromkeys(methods, math.nan)
        return pivot.setdefault(
            item,
            blank | {"causal": math.nan, "causal_ci": "", "causal_rel_ci": "", "causal_status": ""},
        )

    for row in result.to_dicts():
        entry(row[key])[row["method"]] = row["conversions"]
    for row in result.causal_dicts():
        entry(row[key])["causal"] = row["effect"]
        entry(row[key])["causal_ci"] = _interval(row["effect_ci_lower"], row["effect_ci_upper"])
        entry(row[key])["causal_rel_ci"] = _relative_interval(
            row["rel_effect_ci_lower"], row["rel_effect_ci_upper"]
        )
        entry(row[key])["causal_status"] = row["status"]
        if row["warning"]:
            info(f"warning: {row[key]}: {row['warning']}")
    totals = [
        {
            "touched_conversions": result.table.total_conversions,
            "conversions_without_touch": result.without_touch,
            "non_converting_journeys": result.table.total_nulls,
            "paths": len(result.table.paths),
            "uplift_run": result.causal.uplift_run_id or result.causal.status,
        }
    ]
    emit(fmt, {}, {"credited conversions by method": list(pivot.values()), "totals": totals})


def _relative_interval(lower: float, upper: float) -> str:
    """A relative CI as percentages; the lower bound is above -100% by construction."""
    if math.isnan(lower) or math.isnan(upper):
        return ""
    high = "+inf" if math.isinf(upper) else f"{upper:+.1%}"
    return f"[{max(lower, -1.0):+.1%}, {high}]"


def _interval(lower: float, upper: float) -> str:
    if not (math.isfinite(lower) and math.isfinite(upper)):
        return ""
    return f"[{lower:.4g}, {upper:.4g}]"
