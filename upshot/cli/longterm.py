"""`upshot longterm`: a long-term effect projected from short-term ones (surrogate index)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from upshot.cli.common import info, read_frame
from upshot.cli.output import Format, FormatOption, JsonOption, emit, resolve
from upshot.errors import UsageError

if TYPE_CHECKING:
    pass


def _columns(text: str | None) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()] if text else []


T = TypeVar("T")

group = typer.Typer()  # the help is the callback's docstring

HistoryOption = Annotated[
    Path | None,
    typer.Option(
        "--history",
        help="Past decisions whose long-term outcome is observed: surrogates, covariates "
        "and the long-term column (.parquet/.csv/.ndjson).",
    ),
]
TreatmentOption = Annotated[
    str | None, typer.Option("--treatment-col", help="1/true = treated, 0/false = control.")
]
SurrogatesOption = Annotated[
    str | None,
    typer.Option("--surrogates", help="Comma-separated short-term outcome columns (S)."),
]
LongTermOption = Annotated[
    str | None, typer.Option("--long-term-col", help="The long-term outcome column (Y).")
]
CovariatesOption = Annotated[
    str | None,
    typer.Option(
        "--covariates",
        help="Comma-separated pre-treatment covariates (X), in both tables; text columns "
        "are one-hot encoded.",
    ),
]
PropensityOption = Annotated[
    str | None,
    typer.Option(
        "--propensity-col",
        help="The logged P(treated) of a targeted design. Without it, P(treated | X) is estimated.",
    ),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the cross-fitting folds.")]


def _need(value: T | None, flag: str) -> T:
    """The value of a flag the command cannot do without (the flags are optional to
    Typer only so that `longterm validate` can share the command's name)."""
    if value is None:
        raise UsageError(f"{flag} is required")
    return value


@group.callback(invoke_without_command=True)
def longterm(
    ctx: typer.Context,
    history: HistoryOption = None,
    experiment: Annotated[
        Path | None,
        typer.Option(
            "--experiment",
            help="The experiment to project: treatment, surrogates, covariates "
            "(and the propensity when targeted).",
        ),
    ] = None,
    treatment_col: TreatmentOption = None,
    surrogates: SurrogatesOption = None,
    long_term_col: LongTermOption = None,
    covariates: CovariatesOption = None,
    propensity_col: PropensityOption = None,
    seed: SeedOption = 0,
    fmt: FormatOption = Format.table,
    as_json: JsonOption = False,
) -> None:
    """Project the long-term effect of a treatment from its short-term effects.

    The surrogate index (Athey, Chetty, Imbens & Kang 2019): h(S, X) = E[Y | S, X] is
    learned on the history, and the long-term effect is the doubly robust effect of the
    treatment on h in the experiment. The CI comes from the efficient influence function
    of Chen & Ritzwoller (2023) with 5-fold cross-fitting, so it includes the error of h.
    It holds only if the surrogates carry the whole effect on Y (surrogacy).

    Example:

    \b
      upshot longterm --history history.parquet --experiment experiment.parquet
        --treatment-col treated --surrogates streams_7d,active_days_7d
        --long-term-col retention_180d --covariates tenure,activity --json
    """
    if ctx.invoked_subcommand is not None:
        return
    history = _need(history, "--history")
    experiment = _need(experiment, "--experiment")
    treatment_col = _need(treatment_col, "--treatment-col")
    surrogates = _need(surrogates, "--surrogates")
    long_term_col = _need(long_term_col, "--long-term-col")
    from upshot.attribution.longterm.table import surrogate_index_tables

    out_format = resolve(fmt, as_json)
    hist, exp = read_frame(history, "--history"), read_frame(experiment, "--experiment")
    info(f"{history}: {hist.height:,} history rows; {experiment}: {exp.height:,} experiment rows")
    result = surrogate_index_tables(
        hist,
        exp,
        treatment_col=treatment_col,
        surrogates=_columns(surrogates),
        long_term_col=long_term_col,
        covariates=_columns(covariates),
        propensity_col=propensity_col,
        names=(str(history), str(experiment)),
        seed=seed,
    )
    document = result.to_dict()
    long_row = {k: document[k] for k in ("estimate", "se", "ci_lower", "ci_upper")}
    short_rows = [{"surrogate": k, **v} for k, v in document["short_term"].items()]
    emit(
        out_format,
        document,
        {
            f"projected effect on {long_term_col} ({result.method})": [long_row],
            "short-term effects": short_rows,
        },
    )


@group.command("validate")
def validate(
    history: HistoryOption = None,
    past: Annotated[
        Path | None,
        typer.Option(
            "--past",
            help="Past experiments whose long-term outcome is now observed: window, class, "
            "treatment, surrogates, covariates and the long-term column.",
        ),
    ] = None,
    window_col: Annotated[str, typer.Option("--window-col", help="The window column.")] = (
        "window"
    ),
    class_col: Annotated[str, typer.Option("--class-col", help="The class column.")] = (
        "message_class"
    ),
    treatment_col: TreatmentOption = None,
    surrogates: SurrogatesOption = None,
    long_term_col: LongTermOption = None,
    covariates: CovariatesOption = None,
    propensity_col: PropensityOption = None,
    seed: SeedOption = 0,
    fmt: FormatOption = Format.table,
    as_json: JsonOption = False,
) -> None:
    """Backtest the projection: projected against realized long-term effects per class.

    Every (window, class) of --past is projected with h learned on --history and its
    long-term column hidden, then compared with its realized effect (AIPW on the
    long-term column). A window misses when the difference is beyond its 95% CI; a
    class is flagged when its pooled difference is (Bonferroni over classes). Also the
    calibration slope, the coverage, and the naive "short-term x constant" projection.

    Example:

    \b
      upshot longterm validate --history history.parquet --past past.parquet
        --treatment-col treated --surrogates streams_7d,active_days_7d
        --long-term-col retention_180d --covariates tenure,activity --json
    """
    history = _need(history, "--history")
    past = _need(past, "--past")
    treatment_col = _need(treatment_col, "--treatment-col")
    surrogates = _need(surrogates, "--surrogates")
    long_term_col = _need(long_term_col, "--long-term-col")
    from upshot.attribution.longterm.table import backtest_tables

    out_format = resolve(fmt, as_json)
    hist, old = read_frame(history, "--history"), read_frame(past, "--past")
    info(f"{history}: {hist.height:,} history rows; {past}: {old.height:,} past rows")
    result = backtest_tables(
        hist,
        old,
        window_col=window_col,
        class_col=class_col,
        treatment_col=treatment_col,
        surrogates=_columns(surrogates),
        long_term_col=long_term_col,
        covariates=_columns(covariates),
        propensity_col=propensity_col,
        names=(str(history), str(past)),
        seed=seed,
    )
    classes = [
        {f: getattr(c, f) for f in ("message_class", "n_windows", "difference")}
        | {"difference_se": c.difference_se, "flagged": c.flagged}
        for c in result.classes
    ]
    document = {
        "calibration_slope": result.calibration_slope,
        "coverage": result.coverage,
        "rmse_projected": result.rmse_projected,
        "rmse_naive": result.rmse_naive,
        "flagged": list(result.flagged),
        "classes": classes,
        "windows": result.to_dicts(),
    }
    summary = {k: document[k] for k in list(document)[:4]}
    emit(
        out_format,
        document,
        {"calibration": [summary], "classes": classes, "windows": result.to_dicts()},
        main="windows",
    )


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="longterm")
