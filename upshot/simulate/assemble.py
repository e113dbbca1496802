"""Runs the simulation's steps in order and turns the arrays into frames and truth.

Internal to `upshot.simulate`, whose docstring describes the model and the truth.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import polars as pl

from upshot.config import DEFAULT_METRICS, DEFAULT_OBJECTIVES
from upshot.simulate import longterm as lt
from upshot.simulate import world as sw
from upshot.simulate.experiments import Latent, Members, enrol, experiment_effects, tag_sends
from upshot.simulate.truth import Timelines, effects, iso_week, segment_codes, uplift_truth
from upshot.simulate.world import DAY_MS, EVENTS, Arr, Events


def epoch_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000


def _ids(prefix: str, index: Arr, total: int) -> pl.Series:
    width = max(6, len(str(max(total - 1, 0))))
    return (prefix + pl.Series(index, dtype=pl.Int64).cast(pl.String).str.zfill(width)).alias("")


def _times(ms: Arr) -> pl.Series:
    return pl.Series(ms.astype(np.int64) * 1000).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _labels(labels: tuple[str, ...], codes: Arr) -> pl.Series:
    return pl.Series(labels, dtype=pl.String).gather(pl.Series(codes, dtype=pl.Int64))


def _nullable(labels: pl.Series, codes: Arr) -> pl.Series:
    """`labels[codes]`, null where the code is negative."""
    safe = pl.Series(np.maximum(codes, 0), dtype=pl.Int64)
    picked = labels.gather(safe)
    return pl.select(pl.when(pl.lit(pl.Series(codes >= 0))).then(pl.lit(picked))).to_series()


def _realised_experiments(latent: Latent, enrolled: list[Members]) -> Arr:
    assigned = np.zeros(len(latent.member), dtype=np.int64)
    for e, members in enumerate(enrolled):
        mine = latent.experiment == e
        assigned[mine] = members.variant[latent.member[mine]]
    return np.asarray(assigned == latent.variant)


def assemble(
    rng: np.random.Generator,
    n_users: int,
    weeks: int,
    start: date,
    long_rng: np.random.Generator | None = None,
) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
    """Frames (`users`, `sends`, `outcomes`, `assignments`, `latent`, `effects`) and truth.

    With `long_rng`, the history cohort of `upshot.simulate.longterm` (drawn from it) comes
    before the sends and outcomes, and the truth gains `longterm` and `longterm_by_week`.
    """
    origin = epoch_ms(start)
    t_min = origin - sw.PRE_DAYS * DAY_MS
    n_days = sw.PRE_DAYS + 7 * weeks + sw.TAIL_DAYS
    end = t_min + n_days * DAY_MS
    salt = int(rng.integers(0, 2**62))
    users = sw.make_users(rng, n_users)
    base, active = sw.baseline(rng, users, origin, n_days, salt)
    users = sw.with_pre_period(users, base, origin)
    dec = sw.make_decisions(rng, users, origin, weeks)
    d_lat, d_owner = sw.decision_effects(rng, users, dec, origin, n_days, active, salt)
    keep = d_lat.t < end
    d_lat, d_owner = d_lat.take(keep), d_owner[keep]
    d_real = dec.treated[d_owner]
    opened = np.bincount(d_owner[d_real & (d_lat.kind == sw.OPEN)], minlength=len(dec.t)) > 0
    enrolled = enrol(rng, n_users, origin, weeks)
    e_lat = experiment_effects(rng, users, dec, opened, base, enrolled)
    e_lat = e_lat.take(e_lat.events.t < end)
    e_real = _realised_experiments(e_lat, enrolled)
    realised = sw.concat([base, d_lat.take(d_real), e_lat.events.take(e_real)])
    lines = Timelines(realised, t_min)

    diffs = effects(
        dec.user,
        dec.t,
        DEFAULT_OBJECTIVES,
        (d_lat, d_owner),
        (d_lat.take(d_real), d_owner[d_real]),
        lines,
    )
    truth = uplift_truth(
        diffs,
        dec.cls,
        dec.week,
        segment_codes(users.country[dec.user], users.tier[dec.user], users.band[dec.user]),
        start,
        weeks,
    )
    truth["experiments"] = _experiment_truth(e_lat, e_real, enrolled, lines)
    truth["classes"] = {
        c.name: {
            "channel": c.channel,
            "decisions": int(np.sum(dec.cls == k)),
            "treated": int(np.sum(dec.treated & (dec.cls == k))),
            "randomized": int(np.sum(dec.randomized & (dec.cls == k))),
        }
        for k, c in enumerate(sw.CLASSES)
    }
    truth["planted"] = {
        "harmful_reachability": sw.HARMFUL_CLASS,
        "zero_effect": sw.ZERO_CLASS,
        "classes": {c.name: c.channel for c in sw.CLASSES},
    }
    truth["objectives"] = {
        k: {"events": list(o.events), "aggregation": o.aggregation, "window": o.window}
        for k, o in DEFAULT_OBJECTIVES.items()
    }
    truth["metrics"] = {
        k: {"events": list(m.events), "aggregation": m.aggregation, "window": m.window}
        for k, m in DEFAULT_METRICS.items()
    }
    frames = _frames(
        users, dec, enrolled, realised, d_lat, d_owner, d_real, e_lat, e_real, t_min, start
    )
    frames["effects"] = pl.DataFrame({"send_id": frames["sends"].get_column("send_id"), **diffs})
    if long_rng is not None:
        truth.update(lt.longterm_truth(users, dec, realised, t_min, diffs, start, weeks))
        truth["planted"]["surrogacy_violated"] = lt.SURROGACY_VIOLATED
        truth["longterm_outcomes"] = {
            k: {"events": list(o.events), "aggregation": o.aggregation, "window": o.window}
            for k, o in lt.OUTCOMES.items()
        }
        history = lt.make_history(long_rng, users, origin)
        sends, outcomes = _history_frames(history, frames["users"].get_column("user_id"))
        frames["sends"] = pl.concat([sends, frames["sends"]])
        frames["outcomes"] = pl.concat([outcomes, frames["outcomes"]])
        truth["history"] = {
            "decisions": sends.height,
            "start": _times(history.decisions.t[:1]).dt.date()[0].isoformat(),
            "weeks": lt.HISTORY_WEEKS,
        }
    return frames, truth


def _history_frames(history: lt.History, user_ids: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The history cohort's sends (ids `h…`) and outcomes (event ids `l…`)."""
    dec = history.decisions
    send_ids = _ids("h", np.arange(len(dec.t)), len(dec.t))
    outcomes, _ = _outcomes(history.realised, history.t_min, user_ids, send_ids)
    outcomes = outcomes.with_columns(pl.col("event_id").str.replace("^e", "l"))
    names = pl.Series([c.name for c in sw.CLASSES])
    sends = pl.DataFrame(
        {
            "send_id": send_ids,
            "user_id": user_ids.gather(dec.user),
            "message_class": names.gather(dec.cls),
            "channel": pl.Series([c.channel for c in sw.CLASSES]).gather(dec.cls),
            "decided_at": _times(dec.t),
            "treated": dec.treated,
            "propensity": dec.propensity.astype(np.float64),
            "randomized": dec.randomized,
            "campaign_id": names.gather(dec.cls) + "-history",
            "experiment_id": pl.Series([None] * len(dec.t), dtype=pl.String),
            "variant": pl.Series([None] * len(dec.t), dtype=pl.String),
        }
    )
    return sends, outcomes


def _experiment_truth(
    e_lat: Latent, e_real: Arr, enrolled: list[Members], lines: Timelines
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for e, (spec, members) in enumerate(zip(sw.EXPERIMENTS, enrolled, strict=True)):
        mine = e_lat.experiment == e
        own = mine & e_real
        info: dict[str, Any] = {
            "variants": list(spec.variants),
            "control": spec.variants[0],
            "n_users": {v: int(np.sum(members.variant == j)) for j, v in enumerate(spec.variants)},
        }
        for j, variant in enumerate(spec.variants[1:], start=1):
            add = mine & (e_lat.variant == j)
            diffs = effects(
                members.user,
                members.t,
                DEFAULT_METRICS,
                (e_lat.events.take(add), e_lat.member[add]),
                (e_lat.events.take(own), e_lat.member[own]),
                lines,
            )
            for metric, values in diffs.items():
                mean = float(values.mean()) if len(values) else float("nan")
                info.setdefault(metric, {})[variant] = mean
        out[spec.name] = info
    return out


VARIANT_WIDTH = max(len(s.variants) for s in sw.EXPERIMENTS)
# experiment e's variant v is label e * VARIANT_WIDTH + v
VARIANT_LABELS = pl.Series(
    [v for s in sw.EXPERIMENTS for v in s.variants + ("",) * (VARIANT_WIDTH - len(s.variants))]
)
EXPERIMENT_LABELS = pl.Series([s.name for s in sw.EXPERIMENTS])


def _frames(
    users: sw.Users,
    dec: sw.Decisions,
    enrolled: list[Members],
    realised: Events,
    d_lat: Events,
    d_owner: Arr,
    d_real: Arr,
    e_lat: Latent,
    e_real: Arr,
    t_min: int,
    start: date,
) -> dict[str, pl.DataFrame]:
    user_ids = _ids("u", np.arange(users.n), users.n)
    send_ids = _ids("s", np.arange(len(dec.t)), len(dec.t))
    outcomes, event_of = _outcomes(realised, t_min, user_ids, send_ids)
    # realised rows are the baseline, then realised decision latents, then experiment ones
    n_base = len(realised) - int(d_real.sum()) - int(e_real.sum())
    latent_event = np.full(len(d_lat) + len(e_lat.member), -1, np.int64)
    latent_event[np.nonzero(d_real)[0]] = event_of[n_base : n_base + int(d_real.sum())]
    latent_event[len(d_lat) + np.nonzero(e_real)[0]] = event_of[n_base + int(d_real.sum()) :]
    event_ids = outcomes.get_column("event_id")
    return {
        "users": _users(users, user_ids),
        "sends": _sends(dec, users.n, enrolled, start, user_ids, send_ids),
        "outcomes": outcomes,
        "assignments": _assignments(enrolled, user_ids),
        "latent": _latent(
            d_lat, d_owner, d_real, e_lat, e_real, latent_event, user_ids, send_ids, event_ids
        ),
    }


def _outcomes(
    realised: Events, t_min: int, user_ids: pl.Series, send_ids: pl.Series
) -> tuple[pl.DataFrame, Arr]:
    """The outcomes table, by time, and the event number each realised event became."""
    # active_day events of one user-day share their instant, so merging them changes no
    # windowed count; each merged row takes one event_id
    act = np.nonzero(realised.kind == sw.ACTIVE)[0]
    other = np.nonzero(realised.kind != sw.ACTIVE)[0]
    span = int(realised.t.max(initial=t_min) - t_min) + DAY_MS
    _, first, inverse = np.unique(
        realised.user[act] * span + (realised.t[act] - t_min),
        return_index=True,
        return_inverse=True,
    )
    rows = np.concatenate([other, act[first]])
    row_of = np.empty(len(realised), np.int64)
    row_of[other] = np.arange(len(other))
    row_of[act] = len(other) + inverse.reshape(-1)
    out = realised.take(rows)
    # by time, user and event, in one stable int64 sort: events fall on whole seconds,
    # user ids fit 26 bits and event codes 3 (ties keep their deterministic input order)
    seconds = (out.t - t_min) // sw.SECOND_MS
    order = np.argsort((seconds << 29) | (out.user << 3) | out.kind, kind="stable")
    rank = np.empty(len(rows), np.int64)
    rank[order] = np.arange(len(rows))
    out = out.take(order)
    frame = pl.DataFrame(
        {
            "user_id": user_ids.gather(out.user),
            "occurred_at": _times(out.t),
            "event": _labels(EVENTS, out.kind),
            "value": out.value,
            "event_id": _ids("e", np.arange(len(out)), len(out)),
            "send_id": _nullable(send_ids, out.send),
        }
    )
    return frame, rank[row_of]


def _sends(
    dec: sw.Decisions,
    n_users: int,
    enrolled: list[Members],
    start: date,
    user_ids: pl.Series,
    send_ids: pl.Series,
) -> pl.DataFrame:
    weeks = int(dec.week.max(initial=0)) + 1
    week_labels = pl.Series([iso_week(start, w).replace("-", "") for w in range(weeks)])
    names = pl.Series([c.name for c in sw.CLASSES])
    channels = pl.Series([c.channel for c in sw.CLASSES])
    tag_e, tag_v = tag_sends(dec, n_users, enrolled)
    return pl.DataFrame(
        {
            "send_id": send_ids,
            "user_id": user_ids.gather(dec.user),
            "message_class": names.gather(dec.cls),
            "channel": channels.gather(dec.cls),
            "decided_at": _times(dec.t),
            "treated": dec.treated,
            "propensity": dec.propensity.astype(np.float64),
            "randomized": dec.randomized,
            "campaign_id": names.gather(dec.cls) + "-" + week_labels.gather(dec.week),
            "experiment_id": _nullable(EXPERIMENT_LABELS, tag_e),
            "variant": _nullable(
                VARIANT_LABELS, np.where(tag_e >= 0, tag_e * VARIANT_WIDTH + tag_v, -1)
            ),
        }
    )


def _assignments(enrolled: list[Members], user_ids: pl.Series) -> pl.DataFrame:
    return pl.concat(
        [
            pl.DataFrame(
                {
                    "experiment_id": pl.Series([spec.name] * len(m.user), dtype=pl.String),
                    "user_id": user_ids.gather(m.user),
                    "variant": _labels(spec.variants, m.variant),
                    "assigned_at": _times(m.t),
                }
            )
            for spec, m in zip(sw.EXPERIMENTS, enrolled, strict=True)
        ]
    )


def _users(users: sw.Users, user_ids: pl.Series) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": user_ids,
            "country": _labels(sw.COUNTRIES, users.country),
            "product_tier": _labels(sw.TIERS, users.tier),
            "tenure_days": users.tenure_days.astype(np.int64),
            "tenure_band": _labels(sw.BANDS, users.band),
            "pre_minutes": users.pre_minutes.astype(np.float64),
            "pre_active_days": users.pre_active_days.astype(np.int64),
            "push_opt_in": users.push.astype(bool),
            "email_opt_in": users.email.astype(bool),
            "platform": _labels(sw.PLATFORMS, users.platform),
        }
    )


def _latent(
    d_lat: Events,
    d_owner: Arr,
    d_real: Arr,
    e_lat: Latent,
    e_real: Arr,
    latent_event: Arr,
    user_ids: pl.Series,
    send_ids: pl.Series,
    event_ids: pl.Series,
) -> pl.DataFrame:
    """Every latent event with its owner, whether it was realised, and as which event_id."""
    n_d, n_e = len(d_lat), len(e_lat.member)
    all_lat = sw.concat([d_lat, e_lat.events])
    experiment = np.concatenate([np.full(n_d, -1), e_lat.experiment]).astype(np.int64)
    variant = np.concatenate([np.full(n_d, -1), e_lat.experiment * VARIANT_WIDTH + e_lat.variant])
    return pl.DataFrame(
        {
            "source": _labels(("send", "experiment"), (experiment >= 0).astype(np.int64)),
            "send_id": _nullable(send_ids, np.concatenate([d_owner, np.full(n_e, -1)])),
            "experiment_id": _nullable(EXPERIMENT_LABELS, experiment),
            "variant": _nullable(VARIANT_LABELS, variant),
            "user_id": user_ids.gather(all_lat.user),
            "event": _labels(EVENTS, all_lat.kind),
            "occurred_at": _times(all_lat.t),
            "value": all_lat.value,
            "realised": np.concatenate([d_real, e_real]).astype(bool),
            "event_id": _nullable(event_ids, latent_event),
        }
    )
