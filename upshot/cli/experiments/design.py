"""`upshot experiments decompose | plan`: why a metric moved, and how many users a test needs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from upshot.cli.common import state
from upshot.cli.experiments.options import (
    AdjustOpt,
    AlphaOpt,
    ControlOpt,
    CovariateOpt,
    DeteriorationOpt,
    ExperimentArg,
    GuardrailOpt,
    MetricOpt,
    NullsOpt,
    RatioOpt,
    SplitOpt,
    TableOpt,
    UserColOpt,
    VariantColOpt,
)
from upshot.cli.output import Format, FormatOption, JsonOption, emit, resolve
from upshot.errors import UsageError


def decompose(
    ctx: typer.Context,
    experiment: ExperimentArg = None,
    table: TableOpt = None,
    variant_col: VariantColOpt = "variant",
    control: ControlOpt = None,
    funnel: Annotated[
        str | None,
        typer.Option(
            "--funnel",
            help="Steps in order, e.g. opens,conversions (conversions per user = opens per "
            "user x conversions per open) or sends,opens,conversions with --table columns.",
            show_default=False,
        ),
    ] = None,
    segment: Annotated[
        str | None,
        typer.Option(
            "--segment",
            help="Mix/rate split of --metric over this column's values (warehouse: a users "
            "column such as country; --table: a file column).",
            show_default=False,
        ),
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option("--metric", help="The metric split by --segment.", show_default=False),
    ] = None,
    parts: Annotated[
        str | None,
        typer.Option(
            "--parts",
            help="--table only: mix/rate split over channels given as weight:value column "
            "pairs, e.g. push_sends:push_opens,email_sends:email_opens.",
            show_default=False,
        ),
    ] = None,
    user_col: UserColOpt = None,
    alpha: AlphaOpt = None,
    nulls: NullsOpt = None,
    fmt: FormatOption = Format.table,
    as_json: JsonOption = False,
) -> None:
    """Why a metric moved: funnel steps, or a mix/rate split over segments or channels.

    --funnel gives each step's effect and share of the total log-effect, with joint
    delta-method CIs (the steps share numerators and denominators, so they are
    correlated; rel_effect_joint_* are simultaneous over the steps). --segment / --parts
    split the effect into mix (who or what the arm had more of) and rate (how each part
    performed) terms. The parts add up to the total exactly. With --table a NULL or NaN
    value is missing: a user missing any step or part is left out of the decomposition,
    counted in n_missing_control / n_missing_treatment (--nulls zero reads it as 0).
    """
    from upshot.experiments import decompose as run_decompose
    from upshot.store import reading

    st = state(ctx)
    steps = [s.strip() for s in funnel.split(",")] if funnel else None
    pairs = [p.strip() for p in parts.split(",")] if parts else None
    kwargs: dict[str, Any] = {
        "config": st.config, "funnel": steps, "segment": segment, "metric": metric,
        "parts": pairs, "variant_col": variant_col, "user_col": user_col, "control": control,
        "alpha": alpha,
    }  # fmt: skip
    if table is not None:
        result = run_decompose(experiment, table=table, nulls=str(nulls or "missing"), **kwargs)
    else:
        if nulls is not None:
            raise UsageError("--nulls works with --table only; for the warehouse see upshot.toml")
        if not experiment:
            raise UsageError("name an experiment (see `upshot experiments list`) or give --table")
        with reading(st.config, st.db_path) as con:
            result = run_decompose(experiment, con=con, **kwargs)
    out = resolve(fmt, as_json)
    tables: dict[str, list[dict[str, Any]]] = {}
    keys: tuple[str, ...]
    for item in result.items:
        doc = item.to_document()
        if result.kind == "funnel":
            lo, hi = doc["total_rel_effect_ci_lower"], doc["total_rel_effect_ci_upper"]
            title = (
                f"{item.arm}: {doc['metric']} per user {doc['total_rel_effect']:+.2%} "
                f"[{lo:+.2%}, {hi:+.2%}]"
                if doc["status"] == "ok"
                else f"{item.arm}: {doc['status']}"
            )
            if doc["status"] == "ok" and not doc["shares_identified"]:
                title += " (its CI includes 0, so the shares are noise)"
            title += _missing_note(doc)
            keys = (
                "step",
                "control",
                "treatment",
                "rel_effect",
                "rel_effect_ci_lower",
                "rel_effect_ci_upper",
                "share",
                "share_ci_lower",
                "share_ci_upper",
            )
        else:
            title = (
                f"{item.arm}: {doc['metric']} effect {doc['effect']:.4g} "
                f"= mix {doc['mix']:.4g} + rate {doc['rate']:.4g}"
            ) + _missing_note(doc)
            keys = (
                "part",
                "weight_control",
                "weight_treatment",
                "rate_control",
                "rate_treatment",
                "mix",
                "mix_ci_lower",
                "mix_ci_upper",
                "rate",
                "rate_ci_lower",
                "rate_ci_upper",
            )
        tables[title] = [{k: row[k] for k in keys} for row in item.to_dicts()]
    if out in (Format.csv, Format.ndjson):
        tables = {"rows": result.to_dicts()}
    emit(out, result.to_document(), tables)


def _missing_note(doc: dict[str, Any]) -> str:
    """How many users a missing value left out of the decomposition, if any."""
    c, t = doc["n_missing_control"], doc["n_missing_treatment"]
    if not (c or t):
        return ""
    return f" (left out, a value missing: {c:,} control, {t:,} treatment)"


def plan(
    ctx: typer.Context,
    experiment: Annotated[
        str | None,
        typer.Argument(
            help="A warehouse experiment whose control arm gives the baselines.",
            show_default=False,
        ),
    ] = None,
    table: Annotated[
        Path | None,
        typer.Option(
            "--table",
            help="A user-level file giving the baselines (its control rows, or every row if "
            "it has no --variant-col column).",
            show_default=False,
        ),
    ] = None,
    variant_col: VariantColOpt = "variant",
    control: ControlOpt = None,
    metric: MetricOpt = None,
    ratio: RatioOpt = None,
    covariate: CovariateOpt = None,
    mde: Annotated[
        list[str] | None,
        typer.Option(
            "--mde",
            help="METRIC=REL: minimum detectable relative effect of a success metric, e.g. "
            "conversions=0.02. Repeatable.",
            show_default=False,
        ),
    ] = None,
    guardrail: GuardrailOpt = None,
    deterioration: DeteriorationOpt = None,
    users: Annotated[
        int | None,
        typer.Option(
            "--users",
            help="Total users available: also report the effect each metric can detect.",
            show_default=False,
        ),
    ] = None,
    split: SplitOpt = None,
    alpha: AlphaOpt = None,
    power: Annotated[
        float | None,
        typer.Option("--power", help="Power of the verdict (default 0.8).", show_default=False),
    ] = None,
    adjust: AdjustOpt = None,
    fmt: FormatOption = Format.table,
    as_json: JsonOption = False,
) -> None:
    """Users needed to detect given effects under the verdict's corrections.

    Success metrics are powered one-sided at alpha / (success metrics x arms), guardrails
    at alpha for their margin, and the type II error is split over the guardrails after
    the deterioration tests' and the SRM check's false alarms (Schultzberg et al. 2024).
    Baselines (control mean and per-user standard deviation, after CUPED when covariates
    exist) come from a warehouse experiment or a --table file.

    Example:

    \b
      upshot experiments plan send_time_test --mde conversions=0.05 --mde minutes=0.02
        --users 200000
    """
    from upshot.experiments import plan_experiment
    from upshot.experiments.power import as_mapping
    from upshot.experiments.spec import parse_pairs, parse_split
    from upshot.store import reading

    st = state(ctx)
    mdes = as_mapping(parse_pairs(mde or [], "--mde"), "--mde")
    kwargs: dict[str, Any] = {
        "config": st.config, "metrics": metric, "ratios": ratio or [],
        "covariates": covariate or [], "variant_col": variant_col, "control": control,
        "mde": mdes, "guardrails": guardrail or [], "deteriorations": deterioration or [],
        "users": users, "split": parse_split(split), "alpha": alpha, "power": power,
        "adjust": adjust.value if adjust else None,
    }  # fmt: skip
    if table is not None:
        result = plan_experiment(experiment, table=str(table), **kwargs)
    else:
        if not experiment:
            raise UsageError("name an experiment for the baselines, or give --table")
        with reading(st.config, st.db_path) as con:
            result = plan_experiment(experiment, con=con, **kwargs)
    doc = result.to_document()
    title = (
        f"needs {doc['users_total']:,.0f} users in total ("
        + ", ".join(f"{a}: {n:,}" for a, n in doc["users_per_arm"].items())
        + ")"
        if doc["users_per_arm"] and all(v is not None for v in doc["users_per_arm"].values())
        else "no metric to power: give --mde for success metrics"
    )
    emit(resolve(fmt, as_json), doc, {title: result.to_dicts()})
