"""The generative model behind `upshot.simulate`: users, baseline behaviour, decisions.

Internal to `upshot.simulate`, whose docstring describes the model. Everything here is
numpy arrays indexed by user, decision or event; times are int64 milliseconds since the
Unix epoch (UTC). Event times are whole seconds and decision/assignment times carry a
millisecond part of 1-999, so no event ever sits exactly on a window's edge.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

Arr = npt.NDArray[Any]

SECOND_MS = 1_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
PRE_DAYS = 14  # pre-period before `start`: the users' pre_* covariates and CUPED windows
TAIL_DAYS = 14  # outcomes continue after the last decision week so every window completes
EFFECT_DAYS = 7  # a decision's incremental events fall inside this many days after it

EVENTS = (
    "active_day",
    "stream_minutes",
    "subscription_start",
    "push_opt_out",
    "email_unsubscribe",
    "message_open",
)
ACTIVE, MINUTES, CONVERT, PUSH_OUT, EMAIL_OUT, OPEN = range(len(EVENTS))

COUNTRIES = ("US", "GB", "DE", "BR", "IN")
PLATFORMS = ("ios", "android", "web")
TIERS = ("free", "premium")
BANDS = ("0-90d", "90-365d", "1y+")
SESSION_MINUTES = 25.0  # mean length of one incremental viewing session
OPEN_DELAY_S = 7_200.0  # mean seconds from a send to its open


@dataclass(frozen=True, slots=True)
class ClassSpec:
    """One message class: how often it is decided, how it is targeted, what it does.

    Effects are per treated decision, inside the 7 days after it: `conv` is P(extra
    subscription_start) for a free-tier user times `conv_tenure[band]`; `minutes` the mean
    extra stream minutes at activity 0 (times exp(`minutes_slope` × activity)); `day` the
    chance of an extra active day on each otherwise inactive day (times exp(`day_slope` ×
    activity)); `opt` P(opt-out on the class's channel), 1.5× for users under 90 days.
    """

    name: str
    channel: str
    decide_prob: float  # weekly chance that an eligible user gets a decision
    randomized_share: float  # share of decisions that are randomized holdouts
    target_a: float  # targeted propensity = clip(sigmoid(a + b × activity), 0.05, 0.95)
    target_b: float
    conv: float = 0.0
    conv_tenure: tuple[float, float, float] = (1.0, 1.0, 1.0)
    minutes: float = 0.0
    minutes_slope: float = 0.0
    day: float = 0.0
    day_slope: float = 0.0
    opt: float = 0.0
    open: float = 0.0  # P(message_open | sent); opens are not an objective


CLASSES: tuple[ClassSpec, ...] = (
    ClassSpec("new_release_push", "push", 0.40, 0.3, -0.3, 1.2, conv=0.004,
              conv_tenure=(1.5, 1.0, 0.7), minutes=14.0, minutes_slope=0.3, day=0.03,
              day_slope=-0.2, opt=0.002, open=0.22),
    ClassSpec("resume_watching_push", "push", 0.50, 0.3, -0.2, 1.5, conv=0.002,
              minutes=20.0, minutes_slope=0.5, day=0.02, opt=0.0015, open=0.25),
    ClassSpec("weekly_digest_email", "email", 0.50, 0.3, 0.2, 0.8, conv=0.003,
              conv_tenure=(1.2, 1.0, 0.8), minutes=6.0, day=0.01, opt=0.003, open=0.30),
    ClassSpec("trial_offer_email", "email", 0.20, 0.3, -0.5, 1.0, conv=0.03,
              conv_tenure=(1.6, 0.7, 0.3), minutes=3.0, day=0.005, opt=0.004, open=0.25),
    ClassSpec("inapp_upsell_banner", "in_app", 0.30, 0.3, 0.0, 1.3, conv=0.012,
              conv_tenure=(1.0, 1.2, 0.8), open=0.12),
    ClassSpec("whatsapp_reminder", "whatsapp", 0.25, 0.3, -0.4, 1.0, conv=0.002,
              minutes=15.0, minutes_slope=-0.4, day=0.04, day_slope=-0.3, open=0.35),
    ClassSpec("promo_blast_push", "push", 0.45, 0.3, 0.3, 0.9, conv=0.001, minutes=3.0,
              day=0.005, opt=0.022, open=0.10),
    ClassSpec("sports_alert_push", "push", 0.30, 0.3, -0.1, 1.2, open=0.15),
)  # fmt: skip
HARMFUL_CLASS = "promo_blast_push"
ZERO_CLASS = "sports_alert_push"


@dataclass(frozen=True, slots=True)
class ExperimentSpec:
    name: str
    variants: tuple[str, ...]  # the first is the control
    share: float  # share of all users enrolled


EXPERIMENTS: tuple[ExperimentSpec, ...] = (
    ExperimentSpec("send_time_test", ("control", "treatment"), 0.4),
    ExperimentSpec("frequency_test", ("control", "high_frequency"), 0.4),
    ExperimentSpec("subject_line_test", ("control", "variant_a", "variant_b"), 0.3),
)
EXPERIMENT_DAYS = 14  # an experiment's incremental events fall inside this many days
OPEN_LIFT = 0.15  # send_time_test: +15% opens
MINUTES_SHARE, MINUTES_FACTOR = 0.25, 0.2  # frequency_test: 25% of sessions get +20%: +5%
FREQUENCY_OPT_OUT = 0.01  # frequency_test: +1 point opt-outs


@dataclass(frozen=True, slots=True)
class Users:
    """One entry per user; `engagement` is latent, `activity` derives from observed columns."""

    country: Arr
    tier: Arr  # 0 free, 1 premium
    tenure_days: Arr
    band: Arr  # index into BANDS
    platform: Arr
    push: Arr  # push_opt_in
    email: Arr  # email_opt_in
    p_active: Arr  # daily chance of being active
    minutes_mean: Arr  # mean minutes on an active day
    conv_hazard: Arr  # daily chance of a baseline subscription_start (free tier)
    pre_minutes: Arr
    pre_active_days: Arr
    activity: Arr

    @property
    def n(self) -> int:
        return len(self.tier)


@dataclass(frozen=True, slots=True)
class Events:
    """Outcome events; `send` is the decision index an open belongs to, else -1."""

    user: Arr
    t: Arr
    kind: Arr
    value: Arr
    send: Arr

    def take(self, index: Arr) -> Events:
        return Events(*(getattr(self, f)[index] for f in self.__slots__))

    def __len__(self) -> int:
        return len(self.t)


def concat(parts: list[Events]) -> Events:
    return Events(*(np.concatenate([getattr(p, f) for p in parts]) for f in Events.__slots__))


def events(
    user: Arr, t: Arr, kind: int | Arr, value: float | Arr, send: Arr | None = None
) -> Events:
    n = len(t)
    return Events(
        user.astype(np.int64),
        t.astype(np.int64),
        np.broadcast_to(np.asarray(kind, dtype=np.int8), (n,)).copy(),
        np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy(),
        np.full(n, -1, np.int64) if send is None else send.astype(np.int64),
    )


@dataclass(frozen=True, slots=True)
class Decisions:
    """One entry per send decision, in `send_id` order (by time)."""

    user: Arr
    cls: Arr  # index into CLASSES
    t: Arr
    week: Arr  # 0-based decision week
    randomized: Arr
    propensity: Arr
    treated: Arr


def sigmoid(x: Arr) -> Arr:
    return 1.0 / (1.0 + np.exp(-x))


def make_users(rng: np.random.Generator, n: int) -> Users:
    """Covariates and the latent engagement that drives baseline behaviour."""
    country = rng.choice(len(COUNTRIES), n, p=[0.35, 0.1, 0.1, 0.2, 0.25])
    tier = (rng.random(n) < 0.3).astype(np.int8)
    band = rng.choice(3, n, p=[0.2, 0.3, 0.5])
    low = np.array([1, 91, 366])[band]
    high = np.array([90, 365, 3000])[band]
    tenure = rng.integers(low, high + 1).astype(np.int64)
    platform = rng.choice(len(PLATFORMS), n, p=[0.35, 0.45, 0.2])
    push = rng.random(n) < np.where(platform == 2, 0.6, 0.85)
    email = rng.random(n) < 0.9
    engagement = (
        0.6 * tier
        + np.array([-0.3, 0.0, 0.2])[band]
        + np.array([0.1, 0.0, -0.1, 0.2, -0.2])[country]
        + rng.normal(0.0, 1.0, n)
    )
    zero = np.zeros(n)
    return Users(
        country=country,
        tier=tier,
        tenure_days=tenure,
        band=band,
        platform=platform,
        push=push,
        email=email,
        p_active=np.clip(sigmoid(-0.6 + 1.4 * engagement), 0.01, 0.95),
        minutes_mean=40.0 * np.exp(0.35 * engagement + rng.normal(0.0, 0.3, n)),
        conv_hazard=np.where(tier == 0, 0.0006 * np.exp(0.4 * engagement), 0.0),
        pre_minutes=zero,
        pre_active_days=zero.astype(np.int64),
        activity=zero,
    )


def day_offsets(salt: int, user: Arr, day_index: Arr) -> Arr:
    """The second of the day at which user `user` is first active on day `day_index`.

    A hash rather than a draw, so that every active_day event of one user-day, whatever
    caused it, falls at the same instant and duplicates can be merged without changing
    any windowed count (splitmix64's finaliser).
    """
    x = (user.astype(np.uint64) << np.uint64(20)) + day_index.astype(np.uint64)
    x = x + np.uint64(salt)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return (x % np.uint64(86_400)).astype(np.int64)


def baseline(
    rng: np.random.Generator, users: Users, origin: int, n_days: int, salt: int
) -> tuple[Events, Arr]:
    """Every user-day from PRE_DAYS before `origin`: active days, minutes, rare events.

    Returns the events (active_day included, at most one per user-day) and a flag per
    user-day, indexed `user * n_days + day_index`, that is true on active days.
    """
    n = users.n
    parts: list[Events] = []
    active = np.zeros(n * n_days, dtype=bool)
    everyone = np.arange(n)
    for di in range(n_days):
        day = di - PRE_DAYS
        start = origin + day * DAY_MS
        weekend = day % 7 >= 5  # `origin` is a Monday
        p = np.minimum(users.p_active * (1.15 if weekend else 1.0), 0.97)
        draws = rng.random((4, n))
        idx = np.nonzero(draws[0] < p)[0]
        first = start + day_offsets(salt, idx, np.full(len(idx), di)) * SECOND_MS
        parts.append(events(idx, first, ACTIVE, 1.0))
        active[idx.astype(np.int64) * n_days + di] = True
        left = (start + DAY_MS - first) // SECOND_MS
        watch = first + np.floor(rng.random(len(idx)) * left).astype(np.int64) * SECOND_MS
        shape = 1.5
        minutes = rng.gamma(shape, users.minutes_mean[idx] / shape)
        parts.append(events(idx, watch, MINUTES, np.maximum(np.round(minutes, 1), 1.0)))
        for kind, hit in (
            (CONVERT, draws[1] < users.conv_hazard),
            (PUSH_OUT, users.push & (draws[2] < 0.0004)),
            (EMAIL_OUT, users.email & (draws[3] < 0.0003)),
        ):
            who = everyone[hit]
            at = start + rng.integers(0, 86_400, len(who)) * SECOND_MS
            parts.append(events(who, at, kind, 1.0))
    return concat(parts), active


def with_pre_period(users: Users, base: Events, origin: int) -> Users:
    """Fill pre_minutes / pre_active_days from the baseline before `origin`, then activity."""
    pre = base.t < origin
    active = pre & (base.kind == ACTIVE)
    watched = pre & (base.kind == MINUTES)
    days = np.bincount(base.user[active], minlength=users.n).astype(np.int64)
    minutes = np.round(np.bincount(base.user[watched], base.value[watched], users.n), 1)
    # fixed constants (not sample moments), so a user's score depends on their row alone
    activity = (
        0.6 * (days - 5.0) / 4.0
        + 0.3 * (np.log1p(minutes) - 4.5) / 2.0
        + 0.1 * (np.log1p(users.tenure_days) - 5.8) / 1.2
    ) / 0.55
    return replace(users, pre_minutes=minutes, pre_active_days=days, activity=activity)


def eligible(users: Users, channel: str) -> Arr:
    if channel == "push":
        return np.asarray(users.push)
    if channel == "email":
        return np.asarray(users.email)
    return np.ones(users.n, dtype=bool)


def make_decisions(rng: np.random.Generator, users: Users, origin: int, weeks: int) -> Decisions:
    """Weekly decisions per eligible user and class, their propensity and treatment."""
    who, cls, at, week = [], [], [], []
    for w in range(weeks):
        for c, spec in enumerate(CLASSES):
            draws = rng.random(users.n)
            idx = np.nonzero(eligible(users, spec.channel) & (draws < spec.decide_prob))[0]
            t = origin + w * WEEK_MS + rng.integers(0, 7 * 86_400, len(idx)) * SECOND_MS
            who.append(idx)
            cls.append(np.full(len(idx), c))
            at.append(t + rng.integers(1, SECOND_MS, len(idx)))
            week.append(np.full(len(idx), w))
    user, klass, t, wk = (np.concatenate(x).astype(np.int64) for x in (who, cls, at, week))
    order = np.lexsort((user, klass, t))
    user, klass, t, wk = user[order], klass[order], t[order], wk[order]
    share = np.array([s.randomized_share for s in CLASSES])[klass]
    a = np.array([s.target_a for s in CLASSES])[klass]
    b = np.array([s.target_b for s in CLASSES])[klass]
    randomized = rng.random(len(t)) < share
    targeted = np.clip(sigmoid(a + b * users.activity[user]), 0.05, 0.95)
    propensity = np.where(randomized, 0.8, targeted)
    treated = rng.random(len(t)) < propensity
    return Decisions(user, klass, t, wk, randomized, propensity, treated)


def uniform_after(rng: np.random.Generator, t0: Arr, days: int) -> Arr:
    """Whole-second times strictly inside (t0, t0 + days)."""
    span = days * DAY_MS - 2 * SECOND_MS
    raw = t0 + SECOND_MS + np.floor(rng.random(len(t0)) * span).astype(np.int64)
    return (raw // SECOND_MS) * SECOND_MS


def open_after(rng: np.random.Generator, t0: Arr) -> Arr:
    delay = np.floor(rng.exponential(OPEN_DELAY_S, len(t0))).astype(np.int64)
    return (t0 // SECOND_MS + 1 + delay) * SECOND_MS


def decision_effects(
    rng: np.random.Generator,
    users: Users,
    dec: Decisions,
    origin: int,
    n_days: int,
    active: Arr,
    salt: int,
) -> tuple[Events, Arr]:
    """Every decision's latent "if treated" events, drawn whether or not it was treated.

    Returns the events (`send` set on opens only) and each event's owning decision.
    """
    n = len(dec.t)
    u = dec.user
    fields = ("conv", "minutes", "minutes_slope", "day", "day_slope", "opt", "open")
    spec = {f: np.array([getattr(s, f) for s in CLASSES]) for f in fields}
    tenure = np.array([s.conv_tenure for s in CLASSES])
    act = users.activity[u]
    free = users.tier[u] == 0
    new = users.band[u] == 0
    parts: list[Events] = []
    owners: list[Arr] = []

    def add(owner: Arr, t: Arr, kind: int | Arr, value: float | Arr) -> None:
        # only an open names its send; a conversion carrying one would leak the truth
        send = owner if isinstance(kind, int) and kind == OPEN else np.full(len(owner), -1)
        parts.append(events(u[owner], t, kind, value, send=send))
        owners.append(owner)

    p_conv = spec["conv"][dec.cls] * tenure[dec.cls, users.band[u]] * free
    own = np.nonzero(rng.random(n) < p_conv)[0]
    add(own, uniform_after(rng, dec.t[own], EFFECT_DAYS), CONVERT, 1.0)

    mean = spec["minutes"][dec.cls] * np.exp(spec["minutes_slope"][dec.cls] * act)
    sessions = rng.poisson(mean / SESSION_MINUTES)
    own = np.repeat(np.arange(n), sessions)
    length = np.maximum(np.round(rng.gamma(2.0, SESSION_MINUTES / 2.0, len(own)), 1), 0.1)
    add(own, uniform_after(rng, dec.t[own], EFFECT_DAYS), MINUTES, length)

    q_day = np.minimum(spec["day"][dec.cls] * np.exp(spec["day_slope"][dec.cls] * act), 0.5)
    first_day = (dec.t - origin) // DAY_MS + PRE_DAYS
    for k in range(EFFECT_DAYS + 1):
        di = first_day + k
        at = origin + (di - PRE_DAYS) * DAY_MS + day_offsets(salt, u, di) * SECOND_MS
        inside = (at > dec.t) & (at <= dec.t + EFFECT_DAYS * DAY_MS) & (di < n_days)
        idle = ~active[u * n_days + np.minimum(di, n_days - 1)]
        own = np.nonzero(inside & idle & (rng.random(n) < q_day))[0]
        add(own, at[own], ACTIVE, 1.0)

    p_opt = spec["opt"][dec.cls] * np.where(new, 1.5, 1.0)
    channel = np.array([s.channel for s in CLASSES])[dec.cls]
    # only push and email have an opt-out event in the contract
    hit = (rng.random(n) < p_opt) & np.isin(channel, ("push", "email"))
    own = np.nonzero(hit)[0]
    kind = np.where(channel[own] == "push", PUSH_OUT, EMAIL_OUT)
    add(own, uniform_after(rng, dec.t[own], EFFECT_DAYS), kind, 1.0)

    own = np.nonzero(rng.random(n) < spec["open"][dec.cls])[0]
    add(own, open_after(rng, dec.t[own]), OPEN, 1.0)
    return concat(parts), np.concatenate(owners).astype(np.int64)
