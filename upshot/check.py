"""`upshot check`: can the warehouse answer what the config asks, and what to change.

Every check returns a `Finding` with a status: `ok`, `warning` (the numbers will be made
but are weaker or partly wrong) or `error` (the numbers would be empty or wrong, e.g.
sends and outcomes whose user ids do not match). Only counts and a few example values
leave DuckDB.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from upshot.engines import on_engine, rows_of
from upshot.errors import EXIT_DATA_QUALITY, EXIT_OK
from upshot.finding import Finding
from upshot.results import ResultsMixin
from upshot.sql import ident, query

if TYPE_CHECKING:
    import duckdb

    from upshot.config import Config
    from upshot.engines import Engine

    Con = duckdb.DuckDBPyConnection | Engine  # an engine: lake mode on Spark

STATUSES = ("ok", "warning", "error")
WARN_OVERLAP = 0.9  # share of sends' users found in the other table under which to warn...
ERROR_OVERLAP = 0.1  # ...and under which the join is certainly broken
MOSTLY_NULL = 0.5  # a covariate NULL for more than this share of users


@dataclass(frozen=True, slots=True)
class CheckReport(ResultsMixin):
    """Every finding; `exit_code` is 3 when any is an error, else 0."""

    checks: tuple[Finding, ...]

    def to_dicts(self) -> list[dict[str, Any]]:
        return [{"name": f.name, "status": f.status, "detail": f.detail} for f in self.checks]

    def document(self) -> dict[str, Any]:
        return {"checks": [f.to_dict() for f in self.checks]}

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.checks if f.status == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.checks if f.status == "warning")

    @property
    def exit_code(self) -> int:
        return EXIT_DATA_QUALITY if self.errors else EXIT_OK

    def summary(self) -> str:
        bad = [f"{f.name}: {f.detail}" for f in (*self.errors, *self.warnings)]
        head = f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        return head + (f"; {bad[0]}" if bad else "")


def _one(con: Con, name: str, params: Any = None) -> tuple[Any, ...]:
    found = _rows(con, name, params)
    return tuple(found[0].values()) if found else ()


def _rows(con: Con, name: str, params: Any = None) -> list[dict[str, Any]]:
    return rows_of(con, query("check", name), params, name=f"check {name}")


def _table_rows(con: Con, table: str) -> int:
    found = rows_of(con, f"SELECT count(*) AS n FROM {ident(table)}", None, name="check count")
    return int(found[0]["n"]) if found else 0


def id_shape(user_id: str | None) -> str:
    """The format of an id without the id: digits as 9, letters as a or A (`u_000123` →
    `a_999999`), so a detail can show why ids do not match without naming a user."""
    if user_id is None:
        return "-"
    out = (
        "9" if ch.isdigit() else "A" if ch.isupper() else "a" if ch.isalpha() else ch
        for ch in user_id[:40]
    )
    return "".join(out)


def overlap(con: Con, other: str) -> Finding:
    """The share of sends' user_ids that `other` (outcomes or users) holds; the facts hold
    an example id of each side, the detail only their shapes (it goes into the report)."""
    name = f"ids_in_{other}"
    total, found, example_sends, example_other = _one(con, f"id-overlap-{other}")
    facts = {
        "share": found / total if total else None,
        "send_users": total,
        "found": found,
        "example_sends": example_sends,
        f"example_{other}": example_other,
    }
    if not total:
        return Finding(name, "error", "no sends loaded: `upshot load sends FILES`", facts)
    if example_other is None:
        return Finding(name, "error", f"no {other} loaded: `upshot load {other} FILES`", facts)
    share = found / total
    said = (
        f"{share:.1%} of the {total:,} users in sends are in {other} "
        f"(id formats: sends {id_shape(example_sends)}, {other} {id_shape(example_other)})"
    )
    if share < ERROR_OVERLAP:
        status, hint = "error", "; the ids are written differently: make them match, then reload"
    elif share < WARN_OVERLAP:
        status, hint = "warning", f"; are {other} missing for part of the users or period?"
    else:
        status, hint = "ok", ""
    return Finding(name, status, said + hint, facts)


def _named_events(config: Config, experiments: bool) -> dict[str, tuple[str, ...]]:
    """Who uses which events: `objectives.X` and (when there are experiments) `metrics.X`."""
    named = {f"objectives.{k}": o.events for k, o in config.objectives.items()}
    if experiments:
        named |= {f"metrics.{k}": m.events for k, m in config.experiments.metrics.items()}
    return named


def events(con: Con, config: Config) -> Finding:
    """Events the config names that outcomes never contain, with the closest that exist."""
    present = {r["event"]: int(r["rows"]) for r in _rows(con, "outcome-events")}
    named = _named_events(config, experiments=_table_rows(con, "assignments") > 0)
    missing: dict[str, list[str]] = {}
    for user, evs in named.items():
        for ev in evs:
            if ev not in present:
                missing.setdefault(ev, []).append(user)
    blind = sorted(u for u, evs in named.items() if not any(ev in present for ev in evs))
    facts = {
        "missing": [
            {
                "event": ev,
                "used_by": users,
                "close_matches": difflib.get_close_matches(ev, list(present), n=3, cutoff=0.5),
            }
            for ev, users in sorted(missing.items())
        ],
        "present": sorted(present),
        "without_any_event": blind,
    }
    if not present:
        return Finding("events", "error", "no outcomes loaded: `upshot load outcomes`", facts)
    if not missing:
        return Finding("events", "ok", f"all {len(named)} objectives and metrics have events")
    close = [
        f"{m['event']} -> {m['close_matches'][0]}?" for m in facts["missing"] if m["close_matches"]
    ]
    said = (
        f"outcomes never contain {', '.join(sorted(missing))}; they contain "
        f"{', '.join(sorted(present)[:12])}{' ...' if len(present) > 12 else ''}. "
        "Set the events in upshot.toml to the names your outcomes use"
        + (f" ({'; '.join(close)})" if close else "")
    )
    if blind:
        said = f"{', '.join(blind)} would be all zeros: " + said
    return Finding("events", "error" if blind else "warning", said, facts)


def holdouts(con: Con) -> Finding:
    """Classes without a single held-out decision cannot be compared with anything."""
    classes = _rows(con, "classes")
    none = [c["message_class"] for c in classes if not c["held_out"]]
    facts = {"classes": len(classes), "without_holdout": none}
    if not none:
        return Finding("holdouts", "ok", f"all {len(classes)} classes have hold-outs", facts)
    status = "error" if len(none) == len(classes) else "warning"
    said = (
        f"{len(none)} of {len(classes)} classes have no held-out decision (treated = false): "
        f"{', '.join(none[:10])}; log the decisions not to send, or these classes get no estimate"
    )
    return Finding("holdouts", status, said, facts)


def confounding(con: Con, config: Config) -> Finding:
    """Non-randomized classes with neither a logged propensity nor pre-period covariates.

    Pre-period covariates come from `[uplift] pre_window` (default 28 days; "0d" is off).
    """
    pre_window = config.uplift.pre_window
    classes = _rows(con, "classes")
    bare = [
        c["message_class"]
        for c in classes
        if not c["randomized"] and not c["logged_propensity"] and config.uplift.pre_window_days <= 0
    ]
    facts = {"unadjusted": bare, "pre_window": pre_window}
    if not bare:
        return Finding("propensity", "ok", "every class is randomized or adjustable", facts)
    said = (
        f"{', '.join(bare[:10])}: not randomized, no logged propensity and no pre-period "
        "covariates; their uplift rests on the users covariates alone. Log the propensity "
        "or hold out at random"
    )
    return Finding("propensity", "warning", said, facts)


def windows(con: Con, config: Config) -> Finding:
    """Objective windows that end after the last outcome loaded: their effects are diluted."""
    last = _one(con, "last-outcome")
    last_outcome = last[0] if last else None
    if last_outcome is None:
        return Finding("windows", "error", "no outcomes loaded", {"last_outcome": None})
    short: dict[str, dict[str, Any]] = {}
    for name, objective in config.objectives.items():
        seconds = objective.window_days * 86_400
        total, cut = _one(con, "window-reach", {"seconds": seconds, "last": last_outcome})
        if cut:
            short[name] = {"window": objective.window, "decisions": cut, "share": cut / total}
    facts = {"last_outcome": last_outcome.isoformat(), "incomplete": short}
    if not short:
        return Finding("windows", "ok", f"outcomes reach {last_outcome:%Y-%m-%d %H:%M}", facts)
    worst = max(short, key=lambda k: short[k]["share"])
    said = (
        f"outcomes end {last_outcome:%Y-%m-%d %H:%M}; {short[worst]['share']:.1%} of decisions "
        f"have a {worst} window ({short[worst]['window']}) reaching past it, and their effects "
        "are diluted: load later outcomes or analyse earlier weeks"
    )
    everything = all(v["share"] >= 1 for v in short.values())
    return Finding("windows", "error" if everything else "warning", said, facts)


def naive_timestamps(con: duckdb.DuckDBPyConnection, config: Config) -> Finding:
    """Timestamps loaded without a zone (from the load journal): read in load.naive_timezone."""
    zone = config.load.naive_timezone
    recorded = con.execute(
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = '_loads' AND column_name = 'naive_timestamps'"
    ).fetchone()
    if not (recorded and recorded[0]):  # a warehouse only read since before it was recorded
        said = "not recorded: this warehouse's loads predate it; the next load records it"
        return Finding("timestamps", "ok", said, {"count": None, "naive_timezone": zone})
    per_table = {r["table_name"]: int(r["naive"]) for r in _rows(con, "naive-timestamps")}
    total = sum(per_table.values())
    facts = {"count": total, "tables": per_table, "naive_timezone": zone}
    if not total:
        return Finding("timestamps", "ok", "every timestamp loaded carried its zone", facts)
    said = (
        f"{total:,} timestamps loaded without a zone ({', '.join(per_table)}) were read as "
        f"{zone}; if they were local times, set load.naive_timezone and reload"
    )
    return Finding("timestamps", "warning" if zone == "UTC" else "ok", said, facts)


def covariates(con: Con) -> Finding:
    """Users columns that are NULL for most users: as covariates they carry little."""
    if on_engine(con):
        described = [n for n, _t in cast("Engine", con).table_columns("users")]
    else:
        # DESCRIBE resolves `users` as queries do (the lake's view in lake mode)
        duck = cast("duckdb.DuckDBPyConnection", con)
        listed = duck.execute("SELECT column_name FROM (DESCRIBE users)").fetchall()
        described = [r[0] for r in listed]
    names = [n for n in described if n not in ("user_id", "load_id")]
    if not names:
        return Finding("covariates", "ok", "users has no covariates", {"mostly_null": {}})
    counts = ", ".join(f"count({ident(n)})" for n in names)
    found = rows_of(con, f"SELECT count(*), {counts} FROM users", None, name="check covariates")
    row = tuple(found[0].values()) if found else ()
    users = int(row[0]) if row else 0
    nulls = {n: 1 - int(c) / users for n, c in zip(names, row[1:], strict=True)} if users else {}
    mostly = {n: share for n, share in nulls.items() if share > MOSTLY_NULL}
    facts = {"mostly_null": mostly}
    if not mostly:
        return Finding("covariates", "ok", f"{len(names)} covariates, none mostly NULL", facts)
    said = ", ".join(f"{n} ({s:.0%} NULL)" for n, s in sorted(mostly.items()))
    return Finding("covariates", "warning", f"mostly NULL: {said}", facts)


def experiments(con: Con) -> Finding:
    """Experiments whose assigned users have no outcome after their assignment."""
    rows = _rows(con, "experiment-outcomes")
    empty = [r["experiment_id"] for r in rows if not r["with_outcomes"]]
    facts = {"experiments": len(rows), "without_outcomes": empty}
    if not empty:
        return Finding("experiments", "ok", f"every experiment ({len(rows)}) has outcomes", facts)
    said = (
        f"{', '.join(empty)}: no outcome after any assignment; are the user ids the same, "
        "and are outcomes loaded for the experiment's period?"
    )
    return Finding("experiments", "warning", said, facts)


def check(con: Con, config: Config) -> CheckReport:
    """Every check, in the order a new user would fix them. In lake mode the contract
    checks `load` would make come first (upshot.lake_check), and naive timestamps are
    counted in the lake rather than read from the load journal."""
    first: tuple[Finding, ...] = ()
    zones: Callable[[Any, Config], Finding] = naive_timestamps
    if config.lake.path:
        from upshot import lake_check

        first, zones = (lake_check.contract_finding(con, config),), lake_check.naive_finding
    return CheckReport(
        (
            *first,
            overlap(con, "outcomes"),
            overlap(con, "users"),
            events(con, config),
            holdouts(con),
            confounding(con, config),
            windows(con, config),
            zones(con, config),
            covariates(con),
            experiments(con),
        )
    )


def run_check(config: Config, db_path: str, engine: Engine | None = None) -> CheckReport:
    """`check` on the warehouse at `db_path`, opened read-only; or on `engine`'s contract
    tables (lake mode on Spark: the lake's checked views)."""
    from upshot.store import reading

    if engine is not None:
        return check(engine, config)
    with reading(config, db_path) as con:
        return check(con, config)
