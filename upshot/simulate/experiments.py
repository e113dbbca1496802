"""The simulated A/B experiments: enrolment, their latent effects, and send tagging.

Internal to `upshot.simulate`. Each enrolled user carries latent "if variant v" events
for every non-control variant v whatever arm they were randomized to (common random
numbers); only the events of the assigned variant are realised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from upshot.config import CHANNELS
from upshot.simulate.world import (
    CLASSES,
    DAY_MS,
    EMAIL_OUT,
    EXPERIMENT_DAYS,
    EXPERIMENTS,
    FREQUENCY_OPT_OUT,
    MINUTES,
    MINUTES_FACTOR,
    MINUTES_SHARE,
    OPEN,
    OPEN_LIFT,
    PUSH_OUT,
    SECOND_MS,
    Arr,
    Decisions,
    Events,
    Users,
    concat,
    events,
    open_after,
    uniform_after,
)


@dataclass(frozen=True, slots=True)
class Members:
    """The users enrolled in one experiment, one entry each, ordered by user."""

    user: Arr
    variant: Arr  # index into the spec's variants; 0 is the control
    t: Arr  # assigned_at

    def lookup(self, n_users: int) -> Arr:
        """Member index per user, -1 for users not enrolled."""
        index = np.full(n_users, -1, np.int64)
        index[self.user] = np.arange(len(self.user))
        return index

    def window(self, member: Arr, t: Arr) -> Arr:
        """Whether each time falls strictly after its member's assignment, inside the
        window; false where `member` is -1 (not enrolled)."""
        if not len(self.t):
            return np.zeros(len(t), dtype=bool)
        start = self.t[np.maximum(member, 0)]
        return (member >= 0) & (t > start) & (t <= start + EXPERIMENT_DAYS * DAY_MS)


@dataclass(frozen=True, slots=True)
class Latent:
    """Latent experiment events with their owner: experiment, member and variant."""

    events: Events
    experiment: Arr
    member: Arr
    variant: Arr

    def take(self, index: Arr) -> Latent:
        return Latent(
            self.events.take(index), self.experiment[index], self.member[index], self.variant[index]
        )


def enrol(rng: np.random.Generator, n_users: int, origin: int, weeks: int) -> list[Members]:
    """Independent user-level randomization per experiment during the first two weeks."""
    span_s = 7 * min(2, weeks) * 86_400
    enrolled = []
    for spec in EXPERIMENTS:
        user = np.nonzero(rng.random(n_users) < spec.share)[0].astype(np.int64)
        variant = rng.integers(0, len(spec.variants), len(user))
        at = origin + rng.integers(0, span_s, len(user)) * SECOND_MS
        enrolled.append(Members(user, variant, at + rng.integers(1, SECOND_MS, len(user))))
    return enrolled


def experiment_effects(
    rng: np.random.Generator,
    users: Users,
    dec: Decisions,
    opened: Arr,
    base: Events,
    enrolled: list[Members],
) -> Latent:
    """Latent events of every experiment; `opened` marks decisions with a realised open."""
    parts: list[Latent] = []
    for e, (spec, members) in enumerate(zip(EXPERIMENTS, enrolled, strict=True)):
        if spec.name == "send_time_test":
            parts.append(_send_time(rng, users.n, dec, opened, members, e))
        elif spec.name == "frequency_test":
            parts.append(_frequency(rng, users, base, members, e))
    if not parts:
        empty = np.zeros(0, np.int64)
        return Latent(events(empty, empty, 0, 0.0), empty, empty, empty)
    return Latent(
        concat([p.events for p in parts]),
        *(
            np.concatenate([getattr(p, f) for p in parts])
            for f in ("experiment", "member", "variant")
        ),
    )


def _send_time(
    rng: np.random.Generator, n_users: int, dec: Decisions, opened: Arr, members: Members, e: int
) -> Latent:
    """+15% opens: each unopened sent message in the window is opened with chance q, so
    that opens per send go from p to p + (1 - p) q = 1.15 p."""
    member = members.lookup(n_users)[dec.user]
    p = np.array([s.open for s in CLASSES])[dec.cls]
    q = np.minimum(OPEN_LIFT * p / np.maximum(1.0 - p, 1e-9), 1.0)
    draws = rng.random(len(dec.t))
    candidate = dec.treated & ~opened & members.window(member, dec.t)
    own = np.nonzero(candidate & (draws < q))[0]
    at = open_after(rng, dec.t[own])
    ev = events(dec.user[own], at, OPEN, 1.0, send=own)
    return Latent(ev, np.full(len(own), e), member[own], np.ones(len(own), np.int64))


def _frequency(
    rng: np.random.Generator, users: Users, base: Events, members: Members, e: int
) -> Latent:
    """+5% stream minutes (a quarter of sessions run 20% longer) and +1 point opt-outs."""
    member = members.lookup(users.n)[base.user]
    draws = rng.random(len(base.t))
    inside = (base.kind == MINUTES) & members.window(member, base.t)
    own = np.nonzero(inside & (draws < MINUTES_SHARE))[0]
    later = base.t[own] + rng.integers(60, 7_200, len(own)) * SECOND_MS
    extra = np.maximum(np.round(base.value[own] * MINUTES_FACTOR, 1), 0.1)
    minutes = events(base.user[own], later, MINUTES, extra)
    minutes_member = member[own]

    u = members.user
    hit = (rng.random(len(u)) < FREQUENCY_OPT_OUT) & (users.push[u] | users.email[u])
    who = np.nonzero(hit)[0]
    kind = np.where(users.push[u[who]], PUSH_OUT, EMAIL_OUT)
    opt = events(u[who], uniform_after(rng, members.t[who], EXPERIMENT_DAYS), kind, 1.0)
    n = len(own) + len(who)
    return Latent(
        concat([minutes, opt]),
        np.full(n, e),
        np.concatenate([minutes_member, who]).astype(np.int64),
        np.ones(n, np.int64),
    )


def tag_sends(dec: Decisions, n_users: int, enrolled: list[Members]) -> tuple[Arr, Arr]:
    """experiment_id / variant per send (indices, -1 none) for sends inside a test's window.

    send_time_test tags every send, subject_line_test the email sends send_time_test does not.
    """
    channel = np.array([s.channel for s in CLASSES])[dec.cls]
    experiment = np.full(len(dec.t), -1, np.int64)
    variant = np.full(len(dec.t), -1, np.int64)
    for e, spec in enumerate(EXPERIMENTS):
        channels = {"send_time_test": tuple(CHANNELS), "subject_line_test": ("email",)}
        if spec.name not in channels:
            continue
        members = enrolled[e]
        member = members.lookup(n_users)[dec.user]
        tag = np.isin(channel, channels[spec.name]) & (experiment < 0)
        tag &= members.window(member, dec.t)
        experiment[tag] = e
        variant[tag] = members.variant[member[tag]]
    return experiment, variant
