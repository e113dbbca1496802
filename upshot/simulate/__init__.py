"""A synthetic messaging world with known ground truth, seeded, for tests and the demo.

    world = make_world(users=20_000, weeks=4, seed=7)      # polars frames + world.truth
    simulate(Path("demo_out"), users=20_000, weeks=4)      # the input contract on disk

**The world.** Users (country, tier, tenure, platform, opt-ins) have a latent engagement
that drives their baseline behaviour on every day from 14 days before `start` to 14 days
after the last decision week: at most one `active_day` event per user-day, a
`stream_minutes` event on each active day, and rare `subscription_start` (free tier),
`push_opt_out` and `email_unsubscribe` events. The 14 pre-period days give `pre_minutes`
and `pre_active_days`, and from them and tenure a fixed-formula `activity` score.
Each week every eligible user gets a decision for each of 8 message classes with a
class-specific probability, at a uniform time in the week (push classes need
`push_opt_in`, email classes `email_opt_in`). 30% of decisions are randomized holdouts
(`randomized`, propensity 0.8); the rest are targeted with propensity
clip(sigmoid(a + b × activity), 0.05, 0.95), logged exactly. Active users get more sends
and have better outcomes anyway, so the naive sent-minus-held-out difference among
targeted decisions is biased upward (on engagement by several times the true effect).

**Effects.** Every decision carries latent "if treated" events inside the 7 days after
it, drawn whether or not it was treated (common random numbers): an extra
`subscription_start`, extra `stream_minutes` sessions, extra `active_day`s (on days the
user was otherwise inactive), an opt-out on its channel, and a `message_open` with its
`send_id`. Only treated decisions realise them. Effects vary with tier, tenure and
activity; `promo_blast_push` raises push opt-outs by about 2.4 points, and
`sports_alert_push` has no latent event on any objective (its sends are still opened).
Three experiments randomize users 50/50 (thirds for three arms) during the first two
weeks and add latent events in the 14 days after `assigned_at`: `send_time_test` opens
some unopened sends (+15% opens), `frequency_test` lengthens a quarter of viewing
sessions by 20% (+5% minutes) and adds a 1-point opt-out chance, `subject_line_test`
does nothing. Opting out does not change later eligibility (no feedback), so each
decision's potential outcomes are well defined.

**Truth, exact for the sample.** For decision i and objective o (`DEFAULT_OBJECTIVES`:
events, aggregation, window; only events strictly after `decided_at` and inside the
window count), Y_i(1) and Y_i(0) are o computed on the realised events with i's own
realised latent events removed, plus (for Y_i(1)) all of i's latent events; every other
decision and experiment stays as realised. `truth["uplift"][class][objective]` is the
mean of Y_i(1) − Y_i(0) over the class's decisions (also by ISO week of `decided_at`
and by segment). Because decisions overlap in time, this toggling is what makes the
number exact rather than approximate: for `any` and `distinct_days` a decision adds
nothing when something else already fills the window (day). Experiments work the same
way per member and variant with `DEFAULT_METRICS` and windows after `assigned_at`.
Events fall on whole seconds while `decided_at` and `assigned_at` carry 1-999 ms, so no
event sits on a window's edge and `<` versus `<=` at either end never matters.

**Truth layout** (`truth.json` is `json.dumps(World.truth)`): `parameters`, `objectives`,
`metrics`, `classes[class]` (channel, decisions, treated, randomized),
`uplift[class][objective]`, `uplift_by_week[iso_week][class][objective]`,
`uplift_by_segment[class]["column=value"][objective]`, `experiments[exp]` with
`variants`, `control`, `n_users[variant]` and `[metric][variant]` for each non-control
variant, `planted` and `dirty` (fault counts; empty unless `dirty=True`).
Cells without decisions (members) are left out of the by-week and by-segment maps and
are null in `uplift` (`experiments`). `World.effects` holds each decision's own
Y_i(1) − Y_i(0) per objective (the rows behind `uplift`), e.g. to score CATE models.

`dirty=True` writes sends as CSV and outcomes as gzip'd NDJSON with duplicates,
malformed rows, naive and +05:30 timestamps and late events (see `upshot.simulate.dirty`).
Every fault row is extra or an exact copy, so a correct load gives back the clean world.

`longterm=True` adds a history cohort 34 weeks before `start` whose 180-day outcomes are
in the data, and the true long-term effect of every class (`truth["longterm"]`), with
one class, `resume_watching_push`, harming long-term retention in a way its 7-day
effects do not show (see `upshot.simulate.longterm`).

The model lives in the submodules: `world` (users, baseline, decisions and their
latent effects), `experiments`, `truth` (the toggling), `longterm` (the long horizon),
`assemble` (arrays to frames) and `dirty`.
"""

from __future__ import annotations

import gzip
import json
import shutil
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from upshot.errors import UsageError
from upshot.results import jsonable
from upshot.simulate import world as sw
from upshot.simulate.assemble import assemble

LAYOUT = ("users.parquet", "assignments.parquet", "sends", "outcomes", "truth.json")
MAX_USERS = 50_000_000
MAX_WEEKS = 104


@dataclass(frozen=True, slots=True)
class World:
    """The simulated input contract and its ground truth.

    `users` (one row per user), `sends` (one row per decision, by `decided_at`), `outcomes`
    (one row per event, by `occurred_at`) and `assignments` follow the input contract with
    its column names and types (timestamps are UTC `Datetime("us")`). `truth` is the
    JSON-ready dict described in the module docstring. `latent` is not part of the
    contract: every latent effect event (`source` "send" or "experiment", its owner,
    `realised`, and the `event_id` of the outcome row that realises it) for tests that
    recompute the truth independently. `effects` has one row per decision (`send_id`, then
    Y_i(1) − Y_i(0) per objective, in the objective's units). `dirty_sends` and
    `dirty_outcomes` are the raw text rows (with a `partition` date) that `simulate` writes
    when `dirty=True`, else None.
    """

    users: pl.DataFrame
    sends: pl.DataFrame
    outcomes: pl.DataFrame
    assignments: pl.DataFrame
    truth: dict[str, Any]
    latent: pl.DataFrame
    effects: pl.DataFrame
    dirty_sends: pl.DataFrame | None = None
    dirty_outcomes: pl.DataFrame | None = None


@dataclass(frozen=True, slots=True)
class SimulationSummary:
    """What `simulate` wrote: rows and files per table (dirty extras included)."""

    out: str
    users: int
    weeks: int
    seed: int
    start: str
    dirty: bool
    rows: dict[str, int]
    files: dict[str, int]
    classes: list[dict[str, Any]]
    experiments: list[dict[str, Any]]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def _check(users: int, weeks: int, seed: int, start: date) -> None:
    if isinstance(users, bool) or not isinstance(users, int) or not 1 <= users <= MAX_USERS:
        raise UsageError(f"users == {users!r}, must be an integer in [1, {MAX_USERS}]")
    if isinstance(weeks, bool) or not isinstance(weeks, int) or not 1 <= weeks <= MAX_WEEKS:
        raise UsageError(f"weeks == {weeks!r}, must be an integer in [1, {MAX_WEEKS}]")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"seed == {seed!r}, must be a non-negative integer")
    if isinstance(start, datetime) or not isinstance(start, date):
        raise UsageError(f"start == {start!r}, must be a date")
    if start.weekday() != 0:
        monday = date.fromordinal(start.toordinal() - start.weekday())
        raise UsageError(f"start == {start}, must be a Monday (ISO week start), e.g. {monday}")


def make_world(
    *,
    users: int = 20_000,
    weeks: int = 4,
    seed: int = 7,
    start: date = date(2026, 10, 19),
    dirty: bool = False,
    longterm: bool = False,
) -> World:
    """Simulate `users` users over `weeks` decision weeks from Monday `start`, seeded.

    The same arguments give identical frames and truth; `dirty` only adds the fault
    rows (drawn from a separate stream), so the clean frames do not depend on it.
    `longterm` adds the history cohort and the long-term truth (`upshot.simulate.longterm`,
    its own stream too): the current decisions, their events and truth stay the same.
    """
    _check(users, weeks, seed, start)
    rng = np.random.default_rng(seed)
    long_rng = np.random.default_rng([seed, 2]) if longterm else None
    frames, truth = assemble(rng, users, weeks, start, long_rng)
    truth["parameters"] = {
        "users": users,
        "weeks": weeks,
        "seed": seed,
        "start": start.isoformat(),
        "dirty": dirty,
        "longterm": longterm,
        "pre_days": sw.PRE_DAYS,
        "tail_days": sw.TAIL_DAYS,
    }
    raw_sends = raw_outcomes = None
    truth["dirty"] = {}
    if dirty:
        from upshot.simulate.dirty import add_faults

        fault_rng = np.random.default_rng([seed, 1])
        raw_sends, raw_outcomes, truth["dirty"] = add_faults(
            fault_rng, frames["sends"], frames["outcomes"]
        )
    truth = json.loads(json.dumps(jsonable(truth), allow_nan=False))
    return World(
        users=frames["users"],
        sends=frames["sends"],
        outcomes=frames["outcomes"],
        assignments=frames["assignments"],
        truth=truth,
        latent=frames["latent"],
        effects=frames["effects"],
        dirty_sends=raw_sends,
        dirty_outcomes=raw_outcomes,
    )


def _prepare(out: Path) -> None:
    """Refuse a non-empty `out` unless it holds a previous simulation; clear that."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, must be a directory")
    if out.is_dir():
        entries = {p.name for p in out.iterdir()}
        if entries and "truth.json" not in entries and not entries <= set(LAYOUT):
            raise UsageError(
                f"--out {out} is not empty and holds no truth.json: "
                "refusing to write a simulation over other files"
            )
        for name in LAYOUT[::-1]:  # truth.json first, so a half-cleared folder is ours
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _write_partitions(
    frame: pl.DataFrame, column: str, folder: Path, by: tuple[str, ...] = ()
) -> int:
    """`folder/date=D[/k=v...]/part-0.parquet`; like hive writers, the `by` columns live
    in the folder names only."""
    day = frame.get_column(column).dt.date().alias("_day")
    keys = ["_day", *by]
    parts = frame.with_columns(day).partition_by(keys, as_dict=True, maintain_order=True)
    for key, part in sorted(parts.items()):
        target = folder / f"date={key[0]}"
        for name, value in zip(by, key[1:], strict=True):
            target = target / f"{name}={value}"
        target.mkdir(parents=True, exist_ok=True)
        part.drop(keys).write_parquet(target / "part-0.parquet")
    return len(parts)


def _write_raw(frame: pl.DataFrame, folder: Path, kind: str) -> int:
    parts = frame.partition_by("partition", as_dict=True, maintain_order=True)
    for key, part in sorted(parts.items()):
        target = folder / f"date={key[0]}"
        target.mkdir(parents=True, exist_ok=True)
        body = part.drop("partition")
        if kind == "csv":
            body.write_csv(target / "part-0.csv", null_value="")
        else:
            text = "\n".join(body.get_column("line").to_list()) + "\n"
            with gzip.open(
                target / "part-0.ndjson.gz", "wt", encoding="utf-8", compresslevel=1
            ) as f:
                f.write(text)
    return len(parts)


def simulate(
    out: Path,
    *,
    users: int = 20_000,
    weeks: int = 4,
    seed: int = 7,
    start: date = date(2026, 10, 19),
    dirty: bool = False,
    longterm: bool = False,
) -> SimulationSummary:
    """Write the input contract of `make_world(...)` under `out`, truth.json last.

    `out/users.parquet`, `out/assignments.parquet`, `out/sends/date=D/channel=C/part-0.parquet`
    (no channel column in the file, as hive writers do) and
    `out/outcomes/date=D/part-0.parquet` (D the UTC day of decided_at / occurred_at); with
    `dirty`, `part-0.csv` for sends and `part-0.ndjson.gz` for outcomes instead.
    """
    began = time.perf_counter()
    _check(users, weeks, seed, start)
    world = make_world(
        users=users, weeks=weeks, seed=seed, start=start, dirty=dirty, longterm=longterm
    )
    out = Path(out)
    _prepare(out)
    world.users.write_parquet(out / "users.parquet")
    world.assignments.write_parquet(out / "assignments.parquet")
    rows = {"users": world.users.height, "assignments": world.assignments.height}
    files = {"users": 1, "assignments": 1}
    if world.dirty_sends is not None and world.dirty_outcomes is not None:
        files["sends"] = _write_raw(world.dirty_sends, out / "sends", "csv")
        files["outcomes"] = _write_raw(world.dirty_outcomes, out / "outcomes", "ndjson")
        rows["sends"], rows["outcomes"] = world.dirty_sends.height, world.dirty_outcomes.height
    else:
        files["sends"] = _write_partitions(world.sends, "decided_at", out / "sends", ("channel",))
        files["outcomes"] = _write_partitions(world.outcomes, "occurred_at", out / "outcomes")
        rows["sends"], rows["outcomes"] = world.sends.height, world.outcomes.height
    (out / "truth.json").write_text(json.dumps(world.truth, indent=2) + "\n", encoding="utf-8")
    truth = world.truth
    classes = [{"message_class": name, **info} for name, info in truth["classes"].items()]
    experiments = [
        {
            "experiment_id": name,
            "variants": ", ".join(info["variants"]),
            "users": sum(info["n_users"].values()),
        }
        for name, info in truth["experiments"].items()
    ]
    return SimulationSummary(
        out=str(out),
        users=users,
        weeks=weeks,
        seed=seed,
        start=start.isoformat(),
        dirty=dirty,
        rows=rows,
        files=files,
        classes=classes,
        experiments=experiments,
        seconds=round(time.perf_counter() - began, 3),
    )
