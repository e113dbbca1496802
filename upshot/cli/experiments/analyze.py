"""`upshot experiments list | analyze | decide`: effects, SRM and the verdict."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from upshot.cli.common import info, state
from upshot.cli.experiments.options import (
    AdjustOpt,
    AlphaOpt,
    ControlOpt,
    CorrectionOpt,
    CovariateOpt,
    DeteriorationOpt,
    ExperimentArg,
    GuardrailOpt,
    InteractionOpt,
    LowerOpt,
    MetricOpt,
    NullsOpt,
    OtherControlOpt,
    RatioOpt,
    SaveOpt,
    SequentialOpt,
    SplitOpt,
    TableOpt,
    TestOpt,
    TuningOpt,
    UserColOpt,
    VariantColOpt,
    WideOpt,
    WinsorizeOpt,
)
from upshot.cli.output import Format, FormatOption, JsonOption, emit, resolve
from upshot.errors import EXIT_REFUSED, UsageError
from upshot.results import format_value

if TYPE_CHECKING:
    from upshot.cli.common import State
    from upshot.experiments import ExperimentAnalysis


def _options(st: State, **flags: Any) -> Any:
    from upshot.experiments import Options

    values = {k: (v.value if isinstance(v, StrEnum) else v) for k, v in flags.items()}
    return Options.from_config(st.config.experiments, **values)


def _roles(
    guardrail: list[str] | None, deterioration: list[str] | None, lower: list[str] | None
) -> dict[str, list[str]]:
    return {
        "guardrail": guardrail or [],
        "deterioration": deterioration or [],
        "lower_is_better": lower or [],
    }


def _table_only(
    ratio: Any, covariate: Any, winsorize: Any, user_col: Any, nulls: Any
) -> dict[str, Any]:
    """The options that only `--table` takes, by flag, for the check that names them."""
    return {
        "--ratio": ratio,
        "--covariate": covariate,
        "--winsorize": winsorize,
        "--user-col": user_col,
        "--nulls": nulls,
    }


def _run_analysis(
    ctx: typer.Context,
    experiment: str | None,
    table: Path | None,
    *,
    warehouse_only: dict[str, Any],
    table_only: dict[str, Any],
    common: dict[str, Any],
) -> ExperimentAnalysis:
    from upshot.experiments import analyze
    from upshot.experiments.spec import parse_split, winsorize_map
    from upshot.store import reading

    st = state(ctx)
    split = parse_split(common.pop("split"))
    if table is None:
        used = [flag for flag, value in table_only.items() if value]
        if used:
            raise UsageError(
                f"{used[0]} works with --table only; for the warehouse see upshot.toml"
            )
        if not experiment:
            raise UsageError("name an experiment (see `upshot experiments list`) or give --table")
        # on Spark the lake's checked tables, read in place (a DuckDB file is DuckDB's)
        engine = st.lake_engine(f"experiments {ctx.info_name} NAME")
        if engine is not None:
            return analyze(experiment, config=st.config, split=split, engine=engine, **common)
        with reading(st.config, st.db_path) as con:
            return analyze(experiment, con=con, config=st.config, split=split, **common)
    variables = dict.fromkeys(common.get("metrics") or [])
    for r in table_only["--ratio"] or []:
        variables.update(dict.fromkeys(r.split("/", 1)))
    for item in table_only["--covariate"] or []:
        variables.update(dict.fromkeys(item.partition("=")[2].split(",")))
    return analyze(
        experiment,
        table=table,
        config=st.config,
        split=split,
        ratios=table_only["--ratio"] or [],
        covariates=table_only["--covariate"] or [],
        winsorize=winsorize_map(table_only["--winsorize"] or [], variables),
        user_col=table_only["--user-col"],
        nulls=str(table_only["--nulls"] or "missing"),
        variant_col=warehouse_only["variant_col"],
        engine=st.open_engine(),
        **common,
    )


def _save(
    ctx: typer.Context, analysis: ExperimentAnalysis, command: str, verdict: Any = None
) -> str:
    from upshot.experiments import save
    from upshot.store import finish_run, inputs_fingerprint, start_run, writing

    st = state(ctx)
    with writing(st.config, st.db_path, command) as con:
        run_id = start_run(con, command, st.config, inputs_fingerprint=inputs_fingerprint(con))
        rows = save(con, analysis, run_id, verdict)
        finish_run(con, run_id, "ok", {"experiment": analysis.experiment, "rows": rows})
    info(f"wrote {rows} rows to experiment_results (run {run_id})")
    return run_id


def _ci(lower: Any, upper: Any) -> str:
    if lower is None or upper is None or lower != lower or upper != upper:  # None or NaN
        return ""
    return f"[{format_value('', lower)}, {format_value('', upper)}]"


def _compact(row: dict[str, Any]) -> dict[str, Any]:
    """metric, arm, effect, CI, p adjusted (`p_adj`: the p of the CI would read smaller), status:
    what a terminal of 100 columns holds."""
    return {
        "metric": row["metric"],
        "arm": row["arm"],
        "effect": row["effect"],
        "ci": _ci(row["effect_ci_lower"], row["effect_ci_upper"]),
        "p_adj": row["pvalue_adj"],
        "status": row["status"],
    }


def _analysis_tables(
    analysis: ExperimentAnalysis, fmt: Format, wide: bool = False
) -> dict[str, list[dict[str, Any]]]:
    srm = analysis.srm
    if fmt in (Format.csv, Format.ndjson):
        results = analysis.to_dicts()
    else:
        results = analysis.table() if wide else [_compact(r) for r in analysis.to_dicts()]
    arms = [
        {"arm": a, "users": n, "expected": round(srm.expected[a]) if a in srm.expected else None}
        for a, n in analysis.arms.items()
    ]
    tables: dict[str, list[dict[str, Any]]] = {
        "results": results,
        f"{analysis.experiment}: arms": arms,
        "sample ratio check": [
            {"pvalue": srm.pvalue, "status": srm.status, "chi2": srm.statistic, "df": srm.df}
        ],
    }
    if analysis.excluded:
        tables["excluded users"] = [{"reason": k, "users": v} for k, v in analysis.excluded.items()]
    if analysis.interactions:
        keys = (
            "metric", "arm", "other", "other_arm", "effect", "effect_ci_lower",
            "effect_ci_upper", "pvalue_adj", "significant", "status",
        )  # fmt: skip
        found = [{k: i.to_dict()[k] for k in keys} for i in analysis.interactions]
        if not wide:
            found = [
                {
                    "metric": r["metric"],
                    "arm": r["arm"],
                    "with": f"{r['other']}={r['other_arm']}",
                    "effect": r["effect"],
                    "ci": _ci(r["effect_ci_lower"], r["effect_ci_upper"]),
                    "p_adj": r["pvalue_adj"],
                    "status": r["status"],
                }
                for r in found
            ]
        tables["interactions"] = found
    return tables


def analyze(
    ctx: typer.Context,
    experiment: ExperimentArg = None,
    table: TableOpt = None,
    variant_col: VariantColOpt = "variant",
    control: ControlOpt = None,
    metric: MetricOpt = None,
    ratio: RatioOpt = None,
    covariate: CovariateOpt = None,
    split: SplitOpt = None,
    winsorize: WinsorizeOpt = None,
    user_col: UserColOpt = None,
    nulls: NullsOpt = None,
    adjust: AdjustOpt = None,
    test: TestOpt = None,
    alpha: AlphaOpt = None,
    correction: CorrectionOpt = None,
    sequential: SequentialOpt = None,
    sequential_tuning: TuningOpt = None,
    interaction: InteractionOpt = None,
    other_control: OtherControlOpt = None,
    save: SaveOpt = True,
    wide: WideOpt = False,
    fmt: FormatOption = Format.table,
    as_json: JsonOption = False,
) -> None:
    """Effects of every metric and arm against control, with CIs, p-values and an SRM check.

    The terminal table shows metric, arm, effect (treatment - control), its CI, p (adjusted
    for multiple comparisons) and status, in 100 columns; --wide adds the arm means, the
    relative effect, the raw p-value, the method and the missing counts. --json and
    --format csv|ndjson carry every field either way.

    Per metric: the arm means, the difference and the relative lift with CIs, the p-value
    and the Holm-adjusted one, and the test used (method): welch_t / z for means,
    proportion_z for 0/1 metrics, cuped_* / lin_* with covariates (variance_reduction says
    how much CUPED saved; control and treatment are then the adjusted means), delta_* for
    ratios. With --table a NULL or NaN value is missing: n_missing_control /
    n_missing_treatment count the users left out (--nulls zero reads it as 0). Numbers
    that cannot be estimated are null with a status (insufficient_data, zero_variance,
    zero_denominator).

    Examples:

    \b
      upshot experiments analyze send_time_test
      upshot experiments analyze --table users.parquet --variant-col variant
        --metric converted --metric minutes_streamed --ratio clicks/sends
        --covariate minutes_streamed=pre_minutes --split control=0.5,treatment=0.5
        --json
    """
    st = state(ctx)
    opts = _options(
        st,
        alpha=alpha,
        correction=correction,
        adjust=adjust,
        test=test,
        sequential=sequential,
        tuning=sequential_tuning,
    )
    result = _run_analysis(
        ctx,
        experiment,
        table,
        warehouse_only={"variant_col": variant_col},
        table_only=_table_only(ratio, covariate, winsorize, user_col, nulls),
        common={
            "metrics": metric,
            "control": control,
            "split": split,
            "options": opts,
            "interaction": interaction,
            "other_control": other_control,
        },
    )
    document = result.to_document()
    document["run_id"] = (
        _save(ctx, result, "experiments analyze") if table is None and save else None
    )
    out = resolve(fmt, as_json)
    emit(out, document, _analysis_tables(result, out, wide), main="results")


def decide(
    ctx: typer.Context,
    experiment: ExperimentArg = None,
    table: TableOpt = None,
    variant_col: VariantColOpt = "variant",
    control: ControlOpt = None,
    metric: MetricOpt = None,
    ratio: RatioOpt = None,
    covariate: CovariateOpt = None,
    split: SplitOpt = None,
    winsorize: WinsorizeOpt = None,
    user_col: UserColOpt = None,
    nulls: NullsOpt = None,
    guardrail: GuardrailOpt = None,
    deterioration: DeteriorationOpt = None,
    lower_is_better: LowerOpt = None,
    adjust: AdjustOpt = None,
    alpha: AlphaOpt = None,
    deterioration_alpha: Annotated[
        float | None,
        typer.Option(
            "--deterioration-alpha",
            help="Level of the inferiority test run on every metric (default 0.01).",
            show_default=False,
        ),
    ] = None,
    min_sample: Annotated[
        int | None,
        typer.Option(
            "--min-sample",
            help="Fewest users an arm may have for a valid verdict (default 100).",
            show_default=False,
        ),
    ] = None,
    sequential: SequentialOpt = None,
    sequential_tuning: TuningOpt = None,
    fail_on_no_ship: Annotated[
        bool,
        typer.Option(
            "--fail-on-no-ship",
            help=f"Exit {EXIT_REFUSED} when the verdict is no_ship or invalid (for CI gates).",
        ),
    ] = False,
    save: SaveOpt = True,
    fmt: FormatOption = Format.table,
    as_json: JsonOption = False,
) -> None:
    """Ship, no_ship or invalid: the risk-aware verdict for each treatment arm.

    The decision rule of Schultzberg, Ankargren and Frånberg (2024). A treatment
    ships only if at least one success metric is significantly better
    (one-sided, alpha split Bonferroni over the success metrics and arms only), every
    guardrail is significantly non-inferior within its margin (at alpha, uncorrected),
    no metric significantly deteriorates (at --deterioration-alpha), and the quality
    checks pass: no sample ratio mismatch and --min-sample users per arm (otherwise the
    verdict is invalid). Roles and margins come from upshot.toml, or from --guardrail /
    --deterioration / --lower-is-better (every other --table metric is a success metric).

    The verdict is the output, not an error: the exit code is 0 whatever it is, unless
    --fail-on-no-ship asks for exit 5 on no_ship and invalid.
    """
    from upshot.experiments import decide as run_decide

    st = state(ctx)
    ex = st.config.experiments
    opts = _options(st, alpha=alpha, adjust=adjust, sequential=sequential, tuning=sequential_tuning)
    result = _run_analysis(
        ctx,
        experiment,
        table,
        warehouse_only={"variant_col": variant_col},
        table_only=_table_only(ratio, covariate, winsorize, user_col, nulls),
        common={
            "metrics": metric,
            "control": control,
            "split": split,
            "options": opts,
            "roles": _roles(guardrail, deterioration, lower_is_better),
        },
    )
    verdict = run_decide(
        result,
        deterioration_alpha=deterioration_alpha
        if deterioration_alpha is not None
        else ex.deterioration_alpha,
        min_sample=min_sample if min_sample is not None else ex.min_sample,
    )
    document = verdict.to_document()
    document["run_id"] = (
        _save(ctx, result, "experiments decide", verdict) if table is None and save else None
    )
    out = resolve(fmt, as_json)
    keys = (
        "arm",
        "metric",
        "role",
        "rel_effect",
        "pvalue",
        "level",
        "passed",
        "deteriorated",
        "reason",
    )
    tables = {
        f"{verdict.experiment}: {verdict.verdict}": [
            {"arm": a.arm, "verdict": a.verdict, "reason": r}
            for a in verdict.arms
            for r in a.reasons
        ]
        or [{"arm": "-", "verdict": verdict.verdict, "reason": q} for q in verdict.quality],
        "metrics": [{k: d[k] for k in keys} for d in verdict.to_dicts()],
    }
    emit(out, document, tables, main="metrics")
    if fail_on_no_ship and verdict.verdict != "ship":
        info(f"verdict {verdict.verdict}: exiting {EXIT_REFUSED} (--fail-on-no-ship)")
        raise typer.Exit(EXIT_REFUSED)


def list_(
    ctx: typer.Context,
    fmt: FormatOption = Format.table,
    as_json: JsonOption = False,
) -> None:
    """Experiments in the warehouse: arms, users, first and last assignment.

    Also counts users assigned to several arms of one experiment: every analysis
    excludes them. Opens the warehouse read-only.
    """
    from upshot.experiments import list_experiments
    from upshot.store import reading

    st = state(ctx)
    with reading(st.config, st.db_path) as con:
        found = list_experiments(con)
    rows = [
        {
            "experiment": e["experiment"],
            "arms": ", ".join(f"{a}: {n}" for a, n in e["arms"].items()),
            "users": e["users"],
            "multi_arm_users": e["multi_arm_users"],
            "first_assigned": e["first_assigned"],
            "last_assigned": e["last_assigned"],
        }
        for e in found
    ]
    emit(resolve(fmt, as_json), {"experiments": found}, {"experiments": rows})
