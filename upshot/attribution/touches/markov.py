"""Markov-chain attribution: removal effects solved exactly on the absorbing chain.

Journeys become a Markov chain `start -> states -> conv | null`; a state is the last
`order` touches (shorter at the start of a journey). The probability of reaching `conv`
from `start` solves the linear system `(I - Q) x = r` of the absorbing chain, where `Q`
holds the transient-to-transient probabilities and `r` the one-step conversion
probabilities. Removing a channel sends every state that contains it to `null`; its
removal effect is `1 - P(conv without it) / P(conv)`. Credits are the removal effects
normalised to sum to one, times total conversions (and times total value), as
ChannelAttribution defines them. No simulation is involved: every number is a solve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from upshot.attribution.touches.rules import Credits, PathTable, credits_from
from upshot.errors import UsageError

MAX_ORDER = 4


@dataclass(frozen=True, slots=True)
class Chain:
    """The absorbing chain estimated from a path table.

    `states[s]` is the tuple of touches state `s` stands for (index 0 is `start`, the
    empty tuple). `transient` is a CSR matrix `(n, n)` of transition probabilities among
    states; `to_conv` (shape `(n,)`) is each state's one-step probability of converting.
    The probability of `null` is whatever is left of each row.
    """

    order: int
    states: tuple[tuple[str, ...], ...]
    transient: object  # scipy.sparse.csr_matrix; typed loosely so scipy loads lazily
    to_conv: np.ndarray


@dataclass(frozen=True, slots=True)
class RemovalEffects:
    """`conversion_probability` from `start`, and per channel (aligned with `channels`)
    the conversion probability without it and its removal effect (both in [0, 1])."""

    channels: tuple[str, ...]
    conversion_probability: float
    without: np.ndarray
    removal_effect: np.ndarray


def _state(path: tuple[str, ...], end: int, order: int) -> tuple[str, ...]:
    return path[max(0, end - order) : end]


def chain(table: PathTable, order: int = 1) -> Chain:
    """Transition probabilities of the order-`order` chain, counted from the path table."""
    from scipy import sparse

    if not 1 <= order <= MAX_ORDER:
        raise UsageError(f"markov order == {order}, must be between 1 and {MAX_ORDER}")
    ids: dict[tuple[str, ...], int] = {(): 0}
    rows: list[int] = []
    cols: list[int] = []
    weights: list[float] = []
    conv_weight: dict[int, float] = {}
    out_weight: dict[int, float] = {}
    for path, conversions, nulls in zip(table.paths, table.conversions, table.nulls, strict=True):
        journeys = float(conversions + nulls)
        if journeys <= 0:
            continue
        previous = 0
        for end in range(1, len(path) + 1):
            state = ids.setdefault(_state(path, end, order), len(ids))
            rows.append(previous)
            cols.append(state)
            weights.append(journeys)
            out_weight[previous] = out_weight.get(previous, 0.0) + journeys
            previous = state
        conv_weight[previous] = conv_weight.get(previous, 0.0) + float(conversions)
        out_weight[previous] = out_weight.get(previous, 0.0) + journeys
    n = len(ids)
    totals = np.zeros(n)
    for state, weight in out_weight.items():
        totals[state] = weight
    safe = np.where(totals > 0, totals, 1.0)
    counts = sparse.coo_matrix((weights, (rows, cols)), shape=(n, n)).tocsr()
    transient = sparse.diags(1.0 / safe) @ counts
    to_conv = np.zeros(n)
    for state, weight in conv_weight.items():
        to_conv[state] = weight / safe[state]
    states = tuple(sorted(ids, key=ids.__getitem__))
    return Chain(order=order, states=states, transient=transient.tocsr(), to_conv=to_conv)


def absorption(transient: object, to_conv: np.ndarray, keep: np.ndarray | None = None) -> float:
    """P(reaching conv from start) with only the states where `keep` is true left.

    Dropped states behave as `null`: the mass that enters them never converts.
    """
    from scipy import sparse
    from scipy.sparse.linalg import splu

    matrix = sparse.csr_matrix(transient)
    if keep is not None:
        if not keep[0]:
            return 0.0
        index = np.flatnonzero(keep)
        matrix = matrix[index][:, index]
        rhs = to_conv[index]
    else:
        rhs = to_conv
    n = matrix.shape[0]
    system = (sparse.identity(n, format="csc") - matrix.tocsc()).tocsc()
    solution = splu(system).solve(np.asarray(rhs, dtype=np.float64))
    return float(solution[0])


def removal_effects(table: PathTable, order: int = 1) -> RemovalEffects:
    """Exact removal effects of every channel of the path table."""
    fitted = chain(table, order)
    channels = table.channels
    base = absorption(fitted.transient, fitted.to_conv)
    without = np.empty(len(channels))
    for j, channel in enumerate(channels):
        keep = np.asarray([channel not in state for state in fitted.states])
        without[j] = absorption(fitted.transient, fitted.to_conv, keep)
    if base > 0:
        # a removal can only lose conversion paths; clip the last ulp of solver noise
        effect = np.clip(1.0 - without / base, 0.0, 1.0)
    else:
        effect = np.full(len(channels), math.nan)
    return RemovalEffects(channels, base, without, effect)


def markov(table: PathTable, order: int = 1) -> Credits:
    """Markov credits: normalised removal effects times total conversions and value."""
    effects = removal_effects(table, order)
    details = {
        "order": order,
        "conversion_probability": effects.conversion_probability,
        "removal_effects": dict(
            zip(effects.channels, effects.removal_effect.tolist(), strict=True)
        ),
    }
    k = len(effects.channels)
    total = float(np.sum(effects.removal_effect)) if k else 0.0
    if not (total > 0 and math.isfinite(total)) or table.total_conversions <= 0:
        nan = np.full(k, math.nan)
        return credits_from(
            "markov",
            effects.channels,
            nan,
            nan,
            se=nan,
            status="insufficient_data",
            details=details,
        )
    shares = effects.removal_effect / total
    return credits_from(
        "markov",
        effects.channels,
        shares * table.total_conversions,
        shares * table.total_value,
        details=details,
    )
