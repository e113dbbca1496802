"""`upshot longterm`: a long-term effect projected from short-term ones (surrogate index)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from upshot.cli.common import info
from upshot.cli.output import Format, FormatOption, JsonOption, emit, resolve
from upshot.errors import InputError, UsageError

if TYPE_CHECKING:
    import polars as pl


def _read(path: Path, flag: str) -> pl.DataFrame:
    import polars as pl

    if not path.exists():
        raise UsageError(f"{flag} {path}: no such file")
    suffix = "".join(path.suffixes).lower()
    try:
        if suffix.endswith(".parquet"):
            return pl.read_parquet(path)
        if suffix.endswith((".csv", ".csv.gz", ".tsv")):
            return pl.read_csv(
                path, separator="\t" if ".tsv" in suffix else ",", infer_schema_length=100_000
            )
        if suffix.endswith((".ndjson", ".jsonl")):
            return pl.read_ndjson(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{path}: {str(exc).splitlines()[0]}") from None
    raise UsageError(f"{flag} {path}: must end in .parquet, .csv, .tsv, .ndjson or .jsonl")


def _columns(text: str | None) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()] if text else []


def longterm(
    history: Annotated[
        Path,
        typer.Option(
            "--history",
            help="Past decisions whose long-term outcome is observed: surrogates, "
            "covariates and the long-term column (.parquet/.csv/.ndjson).",
        ),
    ],
    experiment: Annotated[
        Path,
        typer.Option(
            "--experiment",
            help="The experiment to project: treatment, surrogates, covariates "
            "(and the propensity when targeted).",
        ),
    ],
    treatment_col: Annotated[
        str, typer.Option("--treatment-col", help="In the experiment: 1/true = treated.")
    ],
    surrogates: Annotated[
        str,
        typer.Option("--surrogates", help="Comma-separated short-term outcome columns (S)."),
    ],
    long_term_col: Annotated[
        str, typer.Option("--long-term-col", help="In the history: the long-term outcome (Y).")
    ],
    covariates: Annotated[
        str | None,
        typer.Option(
            "--covariates",
            help="Comma-separated pre-treatment covariates (X), in both tables; text "
            "columns are one-hot encoded.",
        ),
    ] = None,
    propensity_col: Annotated[
        str | None,
        typer.Option(
            "--propensity-col",
            help="In the experiment: the logged P(treated). Without it, P(treated | X) "
            "is estimated.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the cross-fitting folds.")] = 0,
    fmt: FormatOption = Format.table,
    as_json: JsonOption = False,
) -> None:
    """Project the long-term effect of a treatment from its short-term effects.

    The surrogate index (Athey, Chetty, Imbens & Kang 2019): h(S, X) = E[Y | S, X] is
    learned on the history, and the long-term effect is the doubly robust effect of the
    treatment on h in the experiment. The CI comes from the efficient influence function
    of Chen & Ritzwoller (2023) with 5-fold cross-fitting, so it includes the error of h.
    It holds only if the surrogates carry the whole effect on Y (surrogacy).

    upshot longterm --history history.parquet --experiment experiment.parquet
    --treatment-col treated --surrogates streams_7d,active_days_7d --long-term-col
    retention_180d --covariates tenure,activity --json
    """
    from upshot.attribution.longterm.table import surrogate_index_tables

    out_format = resolve(fmt, as_json)
    hist, exp = _read(history, "--history"), _read(experiment, "--experiment")
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


def register(app: typer.Typer) -> None:
    app.command("longterm")(longterm)
