"""Exact ground truth for the simulated sample, by toggling each unit's own latent events.

Internal to `upshot.simulate` (its docstring states the definition). A *unit* is a send
decision, or an experiment member paired with one non-control variant. Its effect on an
aggregation of events inside a window (t0, t0 + window] is

    agg(R − own + add) − agg(R − own)

where R is every realised event, `own` the unit's realised latent events (empty when the
decision was held out or the member is in the control arm) and `add` all its latent events
for the toggled arm. Only the aggregations' arithmetic needs care: `sum` and `count` are
additive; `any` and `distinct_days` depend on whether anything else is in the window (day).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np

from upshot.config import Metric, Objective, parse_window
from upshot.simulate.world import BANDS, CLASSES, COUNTRIES, DAY_MS, EVENTS, TIERS, Arr, Events

MAX_WINDOW_DAYS = 60


@dataclass(frozen=True, slots=True)
class Timeline:
    """Realised events of one event set as sorted keys `user * span + (t - t_min)`."""

    keys: Arr
    span: int
    t_min: int

    def count(self, user: Arr, lo: Arr, hi: Arr) -> Arr:
        """Events of `user` with lo < t <= hi (times in ms)."""
        base = user * self.span - self.t_min
        right = np.searchsorted(self.keys, base + hi, side="right")
        return right - np.searchsorted(self.keys, base + lo, side="right")


@dataclass(frozen=True, slots=True)
class Toggle:
    """What one family of units adds and removes: owner index, time and value per event."""

    add_owner: Arr
    add_t: Arr
    add_value: Arr
    own_owner: Arr
    own_t: Arr


class Timelines:
    """The realised events, with one sorted `Timeline` per event set, built once each."""

    __slots__ = ("_cache", "realised", "span", "t_min")

    def __init__(self, realised: Events, t_min: int) -> None:
        self.realised = realised
        self.t_min = t_min
        # a user's keys must not reach the next user's, even at the end of a long window
        self.span = int(realised.t.max(initial=t_min) - t_min) + MAX_WINDOW_DAYS * DAY_MS
        self._cache: dict[bytes, Timeline] = {}

    def of(self, kinds: Arr) -> Timeline:
        key = np.sort(kinds).tobytes()
        if key not in self._cache:
            r = self.realised
            keep = np.isin(r.kind, kinds)
            keys = np.sort(r.user[keep] * self.span + (r.t[keep] - self.t_min))
            self._cache[key] = Timeline(keys, self.span, self.t_min)
        return self._cache[key]


def toggle_effect(
    user: Arr,
    t0: Arr,
    window: int,
    aggregation: str,
    toggle: Toggle,
    line: Timeline,
) -> Arr:
    """Y(on) − Y(off) per unit, for units (user, t0) and a window in ms."""
    n = len(t0)

    def inside(owner: Arr, t: Arr) -> Arr:
        start = t0[owner]
        return (t > start) & (t <= start + window)

    a = inside(toggle.add_owner, toggle.add_t)
    a_owner, a_t = toggle.add_owner[a], toggle.add_t[a]
    if aggregation == "sum":
        return np.bincount(a_owner, toggle.add_value[a], minlength=n)
    if aggregation == "count":
        return np.bincount(a_owner, minlength=n).astype(np.float64)
    o = inside(toggle.own_owner, toggle.own_t)
    o_owner, o_t = toggle.own_owner[o], toggle.own_t[o]
    if aggregation == "any":
        others = line.count(user, t0, t0 + window) - np.bincount(o_owner, minlength=n)
        added = np.bincount(a_owner, minlength=n) > 0
        return (added & (others == 0)).astype(np.float64)
    if aggregation != "distinct_days":
        raise ValueError(f"aggregation == {aggregation!r}, must be any|sum|count|distinct_days")
    # a day counts once: the unit adds the days of its events on which nothing else happened
    t_min = line.t_min
    n_days = int(max(a_t.max(initial=t_min), o_t.max(initial=t_min)) - t_min) // DAY_MS + 1
    pairs = np.unique(a_owner * n_days + (a_t - t_min) // DAY_MS)
    owner, day = pairs // n_days, pairs % n_days
    day_start = t_min + day * DAY_MS
    lo = np.maximum(t0[owner], day_start - 1)
    hi = np.minimum(t0[owner] + window, day_start + DAY_MS - 1)
    total = line.count(user[owner], lo, hi)
    own_pairs, own_counts = np.unique(
        o_owner * n_days + (o_t - t_min) // DAY_MS, return_counts=True
    )
    at = np.minimum(np.searchsorted(own_pairs, pairs), max(len(own_pairs) - 1, 0))
    matched = own_pairs[at] == pairs if len(own_pairs) else np.zeros(len(pairs), dtype=bool)
    own = np.where(matched, own_counts[at] if len(own_pairs) else 0, 0)
    return np.bincount(owner[total - own == 0], minlength=n).astype(np.float64)


def kinds_of(events: tuple[str, ...]) -> Arr:
    """Event codes of an objective's events; events the world never emits are ignored."""
    return np.array([EVENTS.index(e) for e in events if e in EVENTS], dtype=np.int8)


def effects(
    user: Arr,
    t0: Arr,
    measures: Mapping[str, Objective | Metric],
    add: tuple[Events, Arr],
    own: tuple[Events, Arr],
    lines: Timelines,
) -> dict[str, Arr]:
    """Per measure, each unit's Y(on) − Y(off).

    `add` holds the latent events a unit adds when switched on, `own` the realised events
    that belong to it (removed to reach "off"), each with its owning unit's index.
    """
    (a, a_owner), (o, o_owner) = add, own
    out = {}
    for name, measure in measures.items():
        kinds = kinds_of(measure.events)
        am, om = np.isin(a.kind, kinds), np.isin(o.kind, kinds)
        toggle = Toggle(a_owner[am], a.t[am], a.value[am], o_owner[om], o.t[om])
        days = parse_window(measure.window, f"{name}.window")
        if days > MAX_WINDOW_DAYS:
            raise ValueError(f"{name}.window == {measure.window!r}, must be <= {MAX_WINDOW_DAYS}d")
        window = round(days * DAY_MS)
        line = lines.of(kinds)
        out[name] = toggle_effect(user, t0, window, measure.aggregation, toggle, line)
    return out


def iso_week(start: date, week: int) -> str:
    year, number, _ = (start + timedelta(weeks=week)).isocalendar()
    return f"{year}-W{number:02d}"


def _means(values: dict[str, Arr], groups: Arr, n_groups: int) -> list[dict[str, float]]:
    """Per group, the mean of each measure (NaN for an empty group)."""
    sizes = np.bincount(groups, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        sums = {k: np.bincount(groups, v, minlength=n_groups) / sizes for k, v in values.items()}
    return [{k: float(sums[k][g]) for k in values} for g in range(n_groups)]


def uplift_truth(
    diffs: dict[str, Arr],
    cls: Arr,
    week: Arr,
    segments: dict[str, tuple[Arr, tuple[str, ...]]],
    start: date,
    weeks: int,
) -> dict[str, Any]:
    """`uplift`, `uplift_by_week` and `uplift_by_segment` from per-decision effects."""
    names = [c.name for c in CLASSES]
    k = len(CLASSES)
    overall = _means(diffs, cls, k)
    by_week: dict[str, Any] = {}
    cells = _means(diffs, week * k + cls, weeks * k)
    counts = np.bincount(week * k + cls, minlength=weeks * k)
    for w in range(weeks):
        label = iso_week(start, w)
        by_week[label] = {names[c]: cells[w * k + c] for c in range(k) if counts[w * k + c]}
    by_segment: dict[str, Any] = {name: {} for name in names}
    for column, (codes, labels) in segments.items():
        m = len(labels)
        cells = _means(diffs, cls * m + codes, k * m)
        counts = np.bincount(cls * m + codes, minlength=k * m)
        for c in range(k):
            for j, label in enumerate(labels):
                if counts[c * m + j]:
                    by_segment[names[c]][f"{column}={label}"] = cells[c * m + j]
    return {
        "uplift": {names[c]: overall[c] for c in range(k)},
        "uplift_by_week": by_week,
        "uplift_by_segment": by_segment,
    }


def segment_codes(country: Arr, tier: Arr, band: Arr) -> dict[str, tuple[Arr, tuple[str, ...]]]:
    return {
        "country": (country, COUNTRIES),
        "product_tier": (tier, TIERS),
        "tenure_band": (band, BANDS),
    }
