"""Shapley-value attribution over channels, computed exactly for any number of channels.

The game: a coalition `S` of channels is worth the conversions of the journeys whose
channels all lie in `S`. Write `w(T)` for the conversions of the journeys whose channel
*set* is exactly `T`; then `v(S) = sum over T ⊆ S of w(T)`, a weighted sum of unanimity
games `u_T(S) = [T ⊆ S]`. The Shapley value is linear in the game and gives `1/|T|` of
`u_T` to each member of `T` (symmetry and efficiency; non-members are dummies), so

    phi_i = sum over channel sets T that contain i of w(T) / |T|.

That is exact, costs one pass over the distinct channel sets, and needs neither the
`2^n` coalitions nor permutation sampling however many channels there are; the standard
error is therefore zero. `coalition_worth` and `shapley_by_coalitions` are the textbook
definition, kept for checking small games (the tests also enumerate all orderings).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from upshot.attribution.touches.rules import Credits, PathTable, credits_from
from upshot.errors import UsageError

MAX_ENUMERATED_CHANNELS = 12


def channel_sets(table: PathTable) -> dict[frozenset[str], tuple[float, float]]:
    """`w(T)`: conversions and value of the journeys whose channel set is exactly `T`."""
    worth: dict[frozenset[str], tuple[float, float]] = {}
    for path, conversions, value in zip(table.paths, table.conversions, table.values, strict=True):
        if conversions == 0 and value == 0:
            continue
        key = frozenset(path)
        c, v = worth.get(key, (0.0, 0.0))
        worth[key] = (c + float(conversions), v + float(value))
    return worth


def shapley(table: PathTable) -> Credits:
    """Exact Shapley credits (conversions and value) for every channel of the table."""
    channels = table.channels
    index = {c: j for j, c in enumerate(channels)}
    conv = np.zeros(len(channels))
    value = np.zeros(len(channels))
    for members, (c, v) in channel_sets(table).items():
        size = len(members)
        for channel in members:
            conv[index[channel]] += c / size
            value[index[channel]] += v / size
    details = {"algorithm": "exact", "channels": len(channels), "standard_error": 0.0}
    return credits_from("shapley", channels, conv, value, details=details)


def coalition_worth(table: PathTable, coalition: frozenset[str]) -> float:
    """`v(S)`: conversions of the journeys whose channels all lie in `coalition`."""
    return float(
        sum(
            c
            for path, c in zip(table.paths, table.conversions, strict=True)
            if set(path) <= coalition
        )
    )


def shapley_by_coalitions(table: PathTable, channels: Sequence[str] | None = None) -> np.ndarray:
    """The textbook formula over all `2^(n-1)` coalitions per channel (small `n` only).

    `phi_i = sum over S not containing i of |S|! (n-|S|-1)! / n! * (v(S ∪ {i}) - v(S))`.
    """
    names = tuple(channels) if channels is not None else table.channels
    n = len(names)
    if n > MAX_ENUMERATED_CHANNELS:
        raise UsageError(
            f"channels == {n}, must be <= {MAX_ENUMERATED_CHANNELS} to enumerate coalitions"
        )
    worth = np.zeros(1 << n)
    bit = {c: 1 << j for j, c in enumerate(names)}
    for path, conversions in zip(table.paths, table.conversions, strict=True):
        mask = 0
        for touch in set(path):
            mask |= bit[touch]
        worth[mask] += conversions
    # v(S) = sum of w(T) over T ⊆ S: the subset-sum (zeta) transform
    for j in range(n):
        step = 1 << j
        for mask in range(1 << n):
            if mask & step:
                worth[mask] += worth[mask ^ step]
    weights = [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
    phi = np.zeros(n)
    for j in range(n):
        step = 1 << j
        for mask in range(1 << n):
            if not mask & step:
                phi[j] += weights[mask.bit_count()] * (worth[mask | step] - worth[mask])
    return phi
