"""Flags shared by the `upshot experiments` commands, with the help text that teaches them."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class Adjust(StrEnum):
    cuped = "cuped"
    lin = "lin"
    none = "none"


class Test(StrEnum):
    welch = "welch"
    z = "z"


class Nulls(StrEnum):
    missing = "missing"
    zero = "zero"


class Correction(StrEnum):
    holm = "holm"
    bonferroni = "bonferroni"
    bh = "bh"
    none = "none"


ExperimentArg = Annotated[
    str | None,
    typer.Argument(
        help="Experiment id in the warehouse (assignments.experiment_id). With --table it "
        "only names the output.",
        show_default=False,
    ),
]
TableOpt = Annotated[
    Path | None,
    typer.Option(
        "--table",
        help="A user-level .parquet or .csv file, one row per user, instead of the warehouse.",
        show_default=False,
    ),
]
NullsOpt = Annotated[
    Nulls | None,
    typer.Option(
        "--nulls",
        help="What a NULL (or NaN) value of --table means: missing (default: the user is "
        "left out of that metric, counted in n_missing_control / n_missing_treatment) or "
        "zero (counted as 0).",
        show_default=False,
    ),
]
VariantColOpt = Annotated[
    str, typer.Option("--variant-col", help="Column of --table holding each user's arm.")
]
ControlOpt = Annotated[
    str | None,
    typer.Option(
        "--control",
        help="The control arm; every other arm is compared with it. Default: "
        "experiments.control in upshot.toml ('control').",
        show_default=False,
    ),
]
MetricOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--metric",
        help="A metric (repeat for more). --table: a numeric or boolean column, 0/1 columns "
        "are tested as proportions; warehouse: a metric or ratio of upshot.toml (default all).",
        show_default=False,
    ),
]
RatioOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--ratio",
        help="--table only: a ratio metric NUM/DEN of two columns, e.g. clicks/sends "
        "(sum of clicks over sum of sends per arm, delta-method SE). Repeatable.",
        show_default=False,
    ),
]
CovariateOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--covariate",
        help="--table only: METRIC=COL[,COL] pre-period covariates for CUPED / Lin, e.g. "
        "minutes_streamed=pre_minutes (a ratio metric takes its name: clicks/sends=pre_clicks).",
        show_default=False,
    ),
]
SplitOpt = Annotated[
    str | None,
    typer.Option(
        "--split",
        help="Intended traffic split as weights, e.g. control=0.5,treatment=0.5 (equal by "
        "default). The SRM check tests the arm sizes against it; arms it names but the data "
        "lack are empty arms, data arms it does not name are 'unknown variants'.",
        show_default=False,
    ),
]
WinsorizeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--winsorize",
        help="--table only: COL=Q caps a heavy-tailed column at its Q quantile over all users "
        "(computed in SQL), e.g. minutes_streamed=0.99. Warehouse: the metric's winsorize "
        "setting in upshot.toml.",
        show_default=False,
    ),
]
UserColOpt = Annotated[
    str | None,
    typer.Option(
        "--user-col",
        help="--table only: user id column; users found under several arms are excluded "
        "and counted.",
        show_default=False,
    ),
]
AdjustOpt = Annotated[
    Adjust | None,
    typer.Option(
        "--adjust",
        help="Regression adjustment with the covariates: pooled-slope CUPED, Lin (2013) "
        "interacted, or none. Default: experiments.adjust ('cuped').",
        show_default=False,
    ),
]
TestOpt = Annotated[
    Test | None,
    typer.Option(
        "--test",
        help="Means: Welch's t (default) or the large-sample z. Proportions always use the "
        "z test, ratios the delta method with z.",
        show_default=False,
    ),
]
AlphaOpt = Annotated[
    float | None,
    typer.Option("--alpha", help="Significance level (default 0.05).", show_default=False),
]
CorrectionOpt = Annotated[
    Correction | None,
    typer.Option(
        "--correction",
        help="Multiple-testing correction of pvalue_adj across metrics and arms (default holm).",
        show_default=False,
    ),
]
SequentialOpt = Annotated[
    bool | None,
    typer.Option(
        "--sequential/--fixed-horizon",
        help="Always-valid confidence sequences (Waudby-Smith et al.), safe to look at "
        "every week, instead of fixed-horizon CIs.",
        show_default=False,
    ),
]
TuningOpt = Annotated[
    float | None,
    typer.Option(
        "--sequential-tuning",
        help="Users (all arms) at which the confidence sequence is tightest; set it to the "
        "planned sample size (default 5000).",
        show_default=False,
    ),
]
InteractionOpt = Annotated[
    str | None,
    typer.Option(
        "--interaction",
        help="Test the 2x2 interaction with another experiment among users in both: its id, "
        "or 'all' for every experiment sharing users (warehouse); with --table, the column "
        "holding the other experiment's arm.",
        show_default=False,
    ),
]
OtherControlOpt = Annotated[
    str | None,
    typer.Option(
        "--other-control",
        help="The other experiment's control label (default: same as --control).",
        show_default=False,
    ),
]
SaveOpt = Annotated[
    bool,
    typer.Option(
        "--save/--no-save",
        help="Warehouse only: write the results to experiment_results with a run id.",
    ),
]
GuardrailOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--guardrail",
        help="METRIC=MARGIN makes a metric a guardrail with a relative non-inferiority "
        "margin, e.g. active_days=0.02 (at most 2% worse). Repeatable.",
        show_default=False,
    ),
]
DeteriorationOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--deterioration",
        help="Make a metric deterioration-only: it can block shipping, never justify it.",
        show_default=False,
    ),
]
LowerOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--lower-is-better",
        help="A metric whose decrease is good (opt-outs, latency). Repeatable.",
        show_default=False,
    ),
]
WideOpt = Annotated[
    bool,
    typer.Option(
        "--wide",
        help="Table output: every column (arm means, relative effect, raw p, method, "
        "missing counts), not the compact metric, arm, effect, CI, p, status.",
    ),
]
