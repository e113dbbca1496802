"""Long-horizon truth for `upshot.simulate`: a history cohort with observed 180-day outcomes.

Internal to `upshot.simulate` (its docstring describes the world; this module adds the
long horizon when `longterm=True`, from its own random stream, so the rest of the world
is the same with or without it).

**The history cohort.** `HISTORY_SHARE` of the users get one send decision each, in one
of `HISTORY_WEEKS` weeks starting `HISTORY_LAG_WEEKS` weeks before `start` (class drawn
uniformly among the classes the user is eligible for, targeted and randomized like the
current decisions, with the same 7-day latent effects). Their baseline behaviour is
simulated daily from `PRE_DAYS` before the history weeks to 7 days after each user's
decision, then the horizon is *sparse*: only the long-term outcome events follow,

- an `active_day` on each day 8..179 after the decision's UTC date with chance
  q(S, X) = 0.15 + 0.1 tier + 0.012 pre_active_days + 0.035 S_retention
  + 0.0003 min(S_engagement, 1000) + 0.2 S_conversion − 0.3 S_reachability (minus `HARM` for a
  treated decision of `SURROGACY_VIOLATED`), clipped to [0, 1];
- a `subscription_start` on one of those days, for a free-tier user who did not convert
  in the 7 days, with chance c(S, X) = 0.01 + 0.004 S_retention + 0.00002 S_engagement
  + 0.001 pre_active_days;

S being the 7-day objectives (`DEFAULT_OBJECTIVES`) of the decision, X the users' columns
`product_tier` and `pre_active_days`. So retention_180d = S_retention + Binomial(172, q)
and subscribed_180d = S_conversion or the tail conversion: the treatment moves them only
through S (surrogacy holds) except for `SURROGACY_VIOLATED`, whose treated decisions lose
`HARM` of daily activity for six months while their 7-day effects look fine. The lag
puts the last history outcome more than `uplift.pre_window` (28 days) before the first
current pre-period day, so no history event enters a current decision's covariates.

**The truth.** For every current decision, E[Y_long | S(w), X] for w = 0, 1, with S(1)
and S(0) its 7-day objectives with and without its own latent events (the toggling of
`upshot.simulate.truth`); `truth["longterm"][class][outcome]` is the mean of the
difference over the class's decisions (exact given the sample's S: the expectation is
over the tail draws only), `truth["longterm_by_week"][iso_week][class][outcome]` the same
per week.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from upshot.config import DEFAULT_LONGTERM_OUTCOMES, DEFAULT_OBJECTIVES, Objective
from upshot.simulate import world as sw
from upshot.simulate.truth import iso_week, kinds_of
from upshot.simulate.world import DAY_MS, SECOND_MS, WEEK_MS, Arr, Events

HISTORY_LAG_WEEKS = 34
HISTORY_WEEKS = 1
HISTORY_SHARE = 0.5
TAIL_FIRST, TAIL_LAST = 8, 179  # tail days, counted from the decision's UTC date
N_TAIL = TAIL_LAST - TAIL_FIRST + 1
SURROGACY_VIOLATED = "resume_watching_push"
HARM = 0.05  # the daily chance of activity its treated decisions lose in the tail
OUTCOMES = DEFAULT_LONGTERM_OUTCOMES


def tail_rate(s: Mapping[str, Arr], tier: Arr, pre_days: Arr) -> Arr:
    """q(S, X): the daily chance of an active day in the tail (before any harm)."""
    return np.asarray(
        0.15
        + 0.1 * tier
        + 0.012 * pre_days
        + 0.035 * s["retention"]
        + 0.0003 * np.minimum(s["engagement"], 1000.0)
        + 0.2 * s["conversion"]
        - 0.3 * s["reachability"]
    )


def tail_conversion(s: Mapping[str, Arr], tier: Arr, pre_days: Arr) -> Arr:
    """c(S, X): the chance of a tail subscription_start (free tier, not converted yet)."""
    c = 0.01 + 0.004 * s["retention"] + 0.00002 * s["engagement"] + 0.001 * pre_days
    return np.asarray(np.clip(c, 0, 1) * (tier == 0) * (1 - s["conversion"]))


def expected(s: Mapping[str, Arr], tier: Arr, pre_days: Arr, harm: Arr) -> dict[str, Arr]:
    """E[outcome | S, X] per decision for each long-term outcome."""
    q = np.clip(tail_rate(s, tier, pre_days) - harm, 0, 1)
    return {
        "retention_180d": s["retention"] + N_TAIL * q,
        "subscribed_180d": s["conversion"] + tail_conversion(s, tier, pre_days),
    }


def levels(
    realised: Events, t_min: int, user: Arr, t0: Arr, measures: Mapping[str, Objective]
) -> dict[str, Arr]:
    """Each measure of each unit (user, t0) on the realised events: events strictly after
    t0 and inside the window. `distinct_days` counts distinct instants, which is the
    number of distinct days for `active_day` (a user-day's events share one instant)."""
    span = int(realised.t.max(initial=t_min) - t_min) + 400 * DAY_MS
    out = {}
    for name, m in measures.items():
        keep = np.isin(realised.kind, kinds_of(m.events))
        keys = realised.user[keep] * span + (realised.t[keep] - t_min)
        values = realised.value[keep] if m.aggregation == "sum" else np.ones(len(keys))
        if m.aggregation == "distinct_days":
            keys = np.unique(keys)
            values = np.ones(len(keys))
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        csum = np.concatenate([[0.0], np.cumsum(values[order])])
        base = user * span - t_min
        window = round(m.window_days * DAY_MS)
        lo = np.searchsorted(keys, base + t0, side="right")
        hi = np.searchsorted(keys, base + t0 + window, side="right")
        total = csum[hi] - csum[lo]
        out[name] = (hi > lo).astype(np.float64) if m.aggregation == "any" else total
    return out


@dataclass(frozen=True, slots=True)
class History:
    """The history cohort: its decisions and every realised event (all before `start`)."""

    decisions: sw.Decisions
    realised: Events
    t_min: int


def make_history(rng: np.random.Generator, users: sw.Users, origin: int) -> History:
    """Decisions, 7 days of full behaviour around them, then the sparse tail."""
    h_origin = origin - HISTORY_LAG_WEEKS * WEEK_MS
    t_min = h_origin - sw.PRE_DAYS * DAY_MS
    n_days = sw.PRE_DAYS + 7 * HISTORY_WEEKS + sw.EFFECT_DAYS + 1
    salt = int(rng.integers(0, 2**62))
    base, active = sw.baseline(rng, users, h_origin, n_days, salt)
    who = np.nonzero(rng.random(users.n) < HISTORY_SHARE)[0]
    elig = np.column_stack([sw.eligible(users, c.channel) for c in sw.CLASSES])[who]
    cls = np.argmax(rng.random(elig.shape) * elig, axis=1)  # uniform among eligible
    week = rng.integers(0, HISTORY_WEEKS, len(who))
    t = h_origin + week * WEEK_MS + rng.integers(0, 7 * 86_400, len(who)) * SECOND_MS
    t = t + rng.integers(1, SECOND_MS, len(who))
    order = np.argsort(t, kind="stable")
    user, cls, t, week = who[order].astype(np.int64), cls[order], t[order], week[order]
    share = np.array([s.randomized_share for s in sw.CLASSES])[cls]
    a = np.array([s.target_a for s in sw.CLASSES])[cls]
    b = np.array([s.target_b for s in sw.CLASSES])[cls]
    randomized = rng.random(len(t)) < share
    targeted = np.clip(sw.sigmoid(a + b * users.activity[user]), 0.05, 0.95)
    propensity = np.where(randomized, 0.8, targeted)
    treated = rng.random(len(t)) < propensity
    dec = sw.Decisions(user, cls, t, week, randomized, propensity, treated)
    lat, owner = sw.decision_effects(rng, users, dec, h_origin, n_days, active, salt)
    lat = lat.take(dec.treated[owner])
    # a history user's full behaviour ends 7 days after their decision (the sparse tail
    # below is all that follows); users without a history decision have none at all
    last = np.full(users.n, np.iinfo(np.int64).min)
    last[user] = t + sw.EFFECT_DAYS * DAY_MS
    seven = sw.concat([base.take(base.t <= last[base.user]), lat.take(lat.t <= last[lat.user])])
    s = levels(seven, t_min, user, t, DEFAULT_OBJECTIVES)
    tier, pre = users.tier[user], users.pre_active_days[user]
    harm = HARM * (treated & (cls == _planted()))
    q = np.clip(tail_rate(s, tier, pre) - harm, 0, 1)
    i, k = np.nonzero(rng.random((len(t), N_TAIL)) < q[:, None])
    day = t[i] // DAY_MS + TAIL_FIRST + k  # days since the epoch
    at = day * DAY_MS + sw.day_offsets(salt, user[i], day) * SECOND_MS
    tail = sw.events(user[i], at, sw.ACTIVE, 1.0)
    conv = np.nonzero(rng.random(len(t)) < tail_conversion(s, tier, pre))[0]
    first = (t[conv] // DAY_MS + TAIL_FIRST) * DAY_MS
    at = first + rng.integers(0, N_TAIL * 86_400, len(conv)) * SECOND_MS
    converted = sw.events(user[conv], at, sw.CONVERT, 1.0)
    return History(dec, sw.concat([seven, tail, converted]), t_min)


def _planted() -> int:
    return [c.name for c in sw.CLASSES].index(SURROGACY_VIOLATED)


def longterm_truth(
    users: sw.Users,
    dec: sw.Decisions,
    realised: Events,
    t_min: int,
    diffs: Mapping[str, Arr],
    start: date,
    weeks: int,
) -> dict[str, Any]:
    """`longterm` and `longterm_by_week` for the current decisions (see the module doc)."""
    observed = levels(realised, t_min, dec.user, dec.t, DEFAULT_OBJECTIVES)
    w = dec.treated.astype(np.float64)
    s1 = {k: observed[k] + (1 - w) * diffs[k] for k in observed}
    s0 = {k: observed[k] - w * diffs[k] for k in observed}
    tier, pre = users.tier[dec.user], users.pre_active_days[dec.user]
    harm = HARM * (dec.cls == _planted())
    y1 = expected(s1, tier, pre, harm)
    y0 = expected(s0, tier, pre, np.zeros(len(w)))
    effect = {k: y1[k] - y0[k] for k in OUTCOMES}
    names = [c.name for c in sw.CLASSES]
    overall: dict[str, Any] = {}
    by_week: dict[str, Any] = {}
    for c, name in enumerate(names):
        mine = dec.cls == c
        if mine.any():
            overall[name] = {k: float(v[mine].mean()) for k, v in effect.items()}
        for wk in range(weeks):
            cell = mine & (dec.week == wk)
            if cell.any():
                by_week.setdefault(iso_week(start, wk), {})[name] = {
                    k: float(v[cell].mean()) for k, v in effect.items()
                }
    return {"longterm": overall, "longterm_by_week": by_week}
