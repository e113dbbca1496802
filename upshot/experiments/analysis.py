"""`analyze`: the Python entry point for one experiment, from the warehouse or a file."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from upshot.errors import UsageError
from upshot.experiments import spec as specs_mod
from upshot.experiments.decompose import (
    FunnelDecomposition,
    ShiftShare,
    segment_moments,
    shift_share,
)
from upshot.experiments.decompose import funnel as funnel_split
from upshot.experiments.engine import Options, analyze_rows, sort_rows
from upshot.experiments.interaction import interactions
from upshot.experiments.query import JOINT
from upshot.experiments.results import ExperimentAnalysis
from upshot.experiments.sources import (
    prepare_table,
    prepare_warehouse,
    require_experiment,
    table_rows,
    warehouse_rows,
)
from upshot.experiments.spec import MetricSpec
from upshot.experiments.stats import Moments
from upshot.results import ResultsMixin

if TYPE_CHECKING:
    import duckdb

    from upshot.config import Config
    from upshot.engines import Engine


@contextlib.contextmanager
def connection(
    con: duckdb.DuckDBPyConnection | None, db: str | None, config: Config
) -> Iterator[duckdb.DuckDBPyConnection]:
    """`con` as given, or a read-only connection to `db`, or an in-memory one (files):
    that one only reads the file, so it has no warehouse tables (no migrations run)."""
    from upshot import store

    if con is not None:
        yield con
    elif db is not None:
        with store.reading(config, db) as opened:
            yield opened
    else:
        opened = store.connect(":memory:", read_only=False, settings=config.warehouse, schema=False)
        try:
            yield opened
        finally:
            opened.close()


@contextlib.contextmanager
def _on(engine: Engine | None, con: Any, config: Config) -> Iterator[Any]:
    """`engine` when given, else the DuckDB connection `connection` gives."""
    if engine is not None:
        yield engine
        return
    with connection(con, None, config) as c:
        yield c


def covariate_items(covariates: Mapping[str, Sequence[str]] | Sequence[str] | None) -> list[str]:
    """Covariates as `metric=col,col` items, from a mapping or from such strings."""
    if covariates is None:
        return []
    if isinstance(covariates, Mapping):
        return [f"{m}={','.join(cols)}" for m, cols in covariates.items()]
    return list(covariates)


def table_specs(
    metrics: Sequence[str] | None,
    ratios: Sequence[str],
    covariates: Mapping[str, Sequence[str]] | Sequence[str] | None,
    roles: Mapping[str, Sequence[str]] | None,
) -> list[MetricSpec]:
    roles = roles or {}
    return specs_mod.from_table_args(
        list(metrics or []),
        list(ratios),
        covariate_items(covariates),
        guardrails=roles.get("guardrail", ()),
        deteriorations=roles.get("deterioration", ()),
        lower_is_better=roles.get("lower_is_better", ()),
    )


def analyze(
    experiment: str | None = None,
    *,
    table: str | Path | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    db: str | None = None,
    config: Config | None = None,
    metrics: Sequence[str] | None = None,
    ratios: Sequence[str] = (),
    covariates: Mapping[str, Sequence[str]] | Sequence[str] | None = None,
    variant_col: str = "variant",
    user_col: str | None = None,
    control: str | None = None,
    split: Mapping[str, float] | None = None,
    winsorize: Mapping[str, float] | None = None,
    roles: Mapping[str, Sequence[str]] | None = None,
    options: Options | None = None,
    interaction: str | None = None,
    other_control: str | None = None,
    nulls: str = "missing",
    engine: Engine | None = None,
) -> ExperimentAnalysis:
    """Analyse one experiment: every metric and treatment arm against control.

    From the warehouse (`experiment`, with `con` or `db`): the metrics configured in
    `config.experiments` (or those named in `metrics`), computed over assignments joined
    to outcomes. From a user-level file (`table`): `metrics` and `ratios` ("num/den")
    are its columns, `covariates` maps a metric to its pre-period columns, `variant_col`
    holds the arm. `split` gives the intended traffic split (weights; equal by default)
    for the SRM check. `roles` ({"guardrail": ["m=0.02"], "deterioration": [...],
    "lower_is_better": [...]}) overrides metric roles. `interaction` tests the 2x2
    interaction with another experiment (warehouse: its id, or "all" for every experiment
    sharing users; table: the column holding the other experiment's arm), whose control
    arm is `other_control` (default: the same label). In a file a NULL or NaN value is
    missing: each metric is analysed on the users whose value (a ratio: numerator and
    denominator) is known, and a missing covariate is imputed beside a missing indicator;
    `nulls="zero"` reads it as 0 instead. `engine` (`upshot.engines`) runs the passes
    there instead of in DuckDB: over `table`, or over the engine's contract tables for a
    warehouse experiment (lake mode: `open_spark(config, tables, checked=True)`). Returns
    an `ExperimentAnalysis`.
    Without `config`, it is read as the CLI reads it: `$UPSHOT_CONFIG`, else ./upshot.toml.
    """
    from upshot.config import load_config

    config = config or load_config()
    options = options or Options.from_config(config.experiments)
    control = control or config.experiments.control
    if split is not None:
        split = dict(split)
    if table is not None:
        specs = table_specs(metrics, ratios, covariates, roles)
        with _on(engine, con, config) as c:
            prepared = prepare_table(
                c, table, specs, variant_col=variant_col, user_col=user_col,
                winsorize=winsorize, nulls=nulls,
            )  # fmt: skip
            name = experiment or Path(str(table)).stem
            result = analyze_rows(
                prepared.rows(c), specs, experiment=name, control=control, split=split,
                options=options, source="table", hc2=partial(prepared.hc2, c),
            )  # fmt: skip
            pairs = []
            if interaction:
                pair_rows = table_rows(
                    c, table, specs, variant_col=variant_col, user_col=user_col,
                    winsorize=winsorize, second_key=interaction, nulls=nulls,
                )  # fmt: skip
                pairs.append((interaction, pair_rows))
    else:
        if not experiment:
            raise UsageError("name an experiment, or give a table with --table")
        if covariates or ratios:
            raise UsageError(
                "covariates and ratios come from upshot.toml for warehouse experiments"
            )
        specs, variables = specs_mod.from_config(config.experiments, metrics)
        specs = _with_roles(specs, roles)
        # `engine`: the contract tables are its own (the lake's checked views on Spark)
        opened = contextlib.nullcontext(engine) if engine is not None else None
        with opened or connection(con, db, config) as c:
            require_experiment(c, experiment, "experiment")
            prepared = prepare_warehouse(experiment, specs, variables)
            result = analyze_rows(
                prepared.rows(c), specs, experiment=experiment, control=control, split=split,
                options=options, source="warehouse", hc2=partial(prepared.hc2, c),
            )  # fmt: skip
            pairs = [
                (other, warehouse_rows(c, experiment, specs, variables, other=other))
                for other in _others(c, experiment, interaction)
            ]
        name = experiment
    if not pairs:
        return result
    found = tuple(
        i
        for other, pair_rows in pairs
        for i in interactions(
            pair_rows, specs, experiment=name, other=other, control=control,
            other_control=other_control or control, alpha=options.alpha,
            correction=options.correction,
        )
    )  # fmt: skip
    return replace(result, interactions=found)


def _others(con: Any, experiment: str, interaction: str | None) -> list[str]:
    """The experiments to test for an interaction with `experiment` (`con`: a DuckDB
    connection or an engine)."""
    from upshot.experiments.sources import named_rows

    if not interaction:
        return []
    if interaction != "all":
        require_experiment(con, interaction, "--interaction")
        return [interaction]
    rows = named_rows(con, "overlapping-experiments", {"experiment": experiment})
    return [str(r[0]) for r in rows]


def _with_roles(
    specs: list[MetricSpec], roles: Mapping[str, Sequence[str]] | None
) -> list[MetricSpec]:
    if not roles:
        return specs
    return specs_mod.apply_roles(
        specs,
        roles.get("guardrail", ()),
        roles.get("deterioration", ()),
        roles.get("lower_is_better", ()),
    )


@dataclass(frozen=True, slots=True)
class Decomposition(ResultsMixin):
    """One decomposition per treatment arm: `kind` funnel (`FunnelDecomposition`) or
    shift_share (`ShiftShare`)."""

    experiment: str
    kind: str
    items: tuple[FunnelDecomposition | ShiftShare, ...]

    def to_dicts(self) -> list[dict[str, Any]]:
        missing = ("n_missing_control", "n_missing_treatment")
        return [
            {"arm": i.arm, **row, **{k: getattr(i, k) for k in missing}}
            for i in self.items
            for row in i.to_dicts()
        ]

    def to_document(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "kind": self.kind,
            "decompositions": [i.to_document() for i in self.items],
        }


def decompose(
    experiment: str | None = None,
    *,
    table: str | Path | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    db: str | None = None,
    config: Config | None = None,
    funnel: Sequence[str] | None = None,
    segment: str | None = None,
    metric: str | None = None,
    parts: Sequence[str] | None = None,
    variant_col: str = "variant",
    user_col: str | None = None,
    control: str | None = None,
    alpha: float | None = None,
    nulls: str = "missing",
) -> Decomposition:
    """Decompose each treatment arm's effect: a `funnel` of steps (metric or column names,
    first step per user, then each step per the previous one), a mix/rate split of
    `metric` over the values of `segment` (a users column, or a file column), or over
    `parts` given as "weight_col:value_col" (file only: channels).

    In a file a NULL or NaN value is missing, as in `analyze`: a user missing any of the
    decomposition's variables is left out of it (complete case: the parts must add up over
    the same users), counted in `n_missing_control` / `n_missing_treatment`;
    `nulls="zero"` reads it as 0 instead."""
    from upshot.config import load_config

    config = config or load_config()
    control = control or config.experiments.control
    alpha = alpha if alpha is not None else config.experiments.alpha
    modes = [m for m in (funnel, segment, parts) if m]
    if len(modes) != 1:
        raise UsageError("give exactly one of --funnel, --segment or --parts")
    if segment and not metric:
        raise UsageError("--segment needs --metric: the metric to split over the segments")
    if parts and table is None:
        raise UsageError("--parts works on a --table file (columns weight:value per part)")
    pairs = [p.split(":", 1) for p in (parts or [])]
    if any(len(p) != 2 or not p[0] or not p[1] for p in pairs):
        raise UsageError("--parts items must look like weight_col:value_col")
    if funnel and len(funnel) < 2:
        raise UsageError("--funnel needs at least two steps")
    names = list(funnel or []) or [w for w, _ in pairs] + [v for _, v in pairs] or [str(metric)]
    spec = MetricSpec("decompose", names[0], covariates=tuple(names[1:]))
    with connection(con, None if table is not None else db, config) as c:
        if table is not None:
            # decompositions sum their parts over the same users: the all-rows aggregates
            rows = table_rows(
                c, table, [spec], variant_col=variant_col, user_col=user_col,
                second_key=segment, nulls=nulls, joint=True,
            )  # fmt: skip
            rows = [{**r, "segment": r.get("variant_b")} for r in rows]
            name = experiment or Path(str(table)).stem
        else:
            if not experiment:
                raise UsageError("name an experiment, or give a table with --table")
            specs, variables = specs_mod.from_config(config.experiments, names)
            if any(s.denominator for s in specs):
                raise UsageError("decompose works on per-user metrics, not ratios")
            require_experiment(c, experiment, "experiment")
            spec = replace(spec, numerator=specs[0].numerator)
            rows = warehouse_rows(c, experiment, [spec], variables, segment=segment)
            name = experiment
    note = _adjusted_note(config, names[-1] if funnel else str(metric), table is None)
    # a file's rows carry the complete case of every variable (NULL is missing); the
    # warehouse's do not (no event is a real 0), nor a file's read with nulls="zero"
    prefix = JOINT if any(JOINT + "n" in r for r in rows) else ""
    if segment:
        found = _by_segment(rows, name, str(metric), control, alpha, prefix)
        return replace(found, items=tuple(replace(i, note=note) for i in found.items))
    labels = [f"{w}->{v}" for w, v in pairs]
    groups = sort_rows(rows, control, None)
    base = Moments.from_row(groups.rows.get(control, {}), names, prefix)
    missing = {a: _missing(groups.rows.get(a, {}), prefix) for a in groups.arms}
    items: list[FunnelDecomposition | ShiftShare] = []
    for arm in groups.arms[1:]:
        m = Moments.from_row(groups.rows.get(arm, {}), names, prefix)
        if funnel:
            items.append(funnel_split(base, m, experiment=name, arm=arm, alpha=alpha))
        else:
            items.append(
                shift_share(
                    base,
                    m,
                    labels,
                    experiment=name,
                    arm=arm,
                    metric="+".join(v for _, v in pairs),
                    alpha=alpha,
                )
            )
    items = [
        replace(
            i, note=note, n_missing_control=missing[control], n_missing_treatment=missing[i.arm]
        )
        for i in items
    ]
    return Decomposition(name, "funnel" if funnel else "shift_share", tuple(items))


def _missing(row: Mapping[str, Any], prefix: str) -> int:
    """Users of one row left out because a variable of the decomposition is missing."""
    if not prefix or not row:
        return 0
    return int(row.get("n") or 0) - int(row.get(prefix + "n") or 0)


def _adjusted_note(config: Config, metric: str, warehouse: bool) -> str:
    """Why `analyze`'s effect of `metric` differs from its decomposition's, if it does: a
    configured covariate makes it adjusted there, never here ('' when it is not)."""
    if not warehouse or config.experiments.adjust == "none":
        return ""
    try:
        (spec,), _ = specs_mod.from_config(config.experiments, [metric])
    except (UsageError, ValueError):
        return ""
    if not spec.covariates:
        return ""
    return (
        f"unadjusted: analyze reports {metric} adjusted ({config.experiments.adjust} on "
        f"{', '.join(spec.covariates)}), so its effect differs from this total by the adjustment"
    )


def _by_segment(
    rows: Sequence[Mapping[str, Any]],
    name: str,
    metric: str,
    control: str,
    alpha: float,
    prefix: str = "",
) -> Decomposition:
    kept = [r for r in rows if not r.get("exclusion") and r.get("variant") is not None]
    segments = sorted({str(r["segment"]) for r in kept})
    arms = [control, *sorted({str(r["variant"]) for r in kept} - {control})]
    by_arm = {a: [dict(r) for r in kept if r["variant"] == a] for a in arms}
    missing = {a: sum(_missing(r, prefix) for r in by_arm[a]) for a in arms}
    base = segment_moments(by_arm[control], metric, segments, prefix)
    items: list[FunnelDecomposition | ShiftShare] = [
        replace(
            shift_share(
                base, segment_moments(by_arm[arm], metric, segments, prefix), segments,
                experiment=name, arm=arm, metric=metric, alpha=alpha,
            ),
            n_missing_control=missing[control],
            n_missing_treatment=missing[arm],
        )
        for arm in arms[1:]
    ]  # fmt: skip
    return Decomposition(name, "shift_share", tuple(items))
