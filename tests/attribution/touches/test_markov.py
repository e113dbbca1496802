"""Markov removal effects: published examples, a solve-free reference, and known truth.

The reference (`forward_absorption`) shares no code with `upshot.attribution.touches.markov`: it
counts transitions from the raw `" > "` strings with a Counter and propagates the
state distribution step by step (no linear solve) until less than 1e-15 of the mass is
still moving, so it agrees with the exact solve to about that truncation.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import pairwise

import numpy as np
import pytest

from upshot.attribution.touches.markov import chain, markov, removal_effects
from upshot.attribution.touches.rules import path_table
from upshot.errors import UsageError

CONV, NULL = "(conv)", "(null)"


def transitions(rows, order=1):
    """Transition probabilities of the order-`order` chain, counted from raw strings."""
    counts: dict[tuple, Counter] = defaultdict(Counter)
    for text, conversions, nulls in rows:
        touches = text.split(" > ")
        states = [()] + [tuple(touches[max(0, i + 1 - order) : i + 1]) for i in range(len(touches))]
        for a, b in pairwise(states):
            counts[a][b] += conversions + nulls
        counts[states[-1]][CONV] += conversions
        counts[states[-1]][NULL] += nulls
    return {a: {b: n / sum(c.values()) for b, n in c.items() if n} for a, c in counts.items()}


def forward_absorption(probabilities, removed=None):
    """P(conv from start) by pushing the state distribution forward, step by step."""
    mass = {(): 1.0}
    converted = 0.0
    while sum(mass.values()) > 1e-15:
        following: dict = defaultdict(float)
        for state, p in mass.items():
            for target, q in probabilities[state].items():
                if target == CONV:
                    converted += p * q
                elif target != NULL and not (removed and removed in target):
                    following[target] += p * q
        mass = following
    return converted


def reference_effects(rows, order=1):
    probabilities = transitions(rows, order)
    base = forward_absorption(probabilities)
    channels = sorted({c for text, _, _ in rows for c in text.split(" > ")})
    return base, {c: 1 - forward_absorption(probabilities, c) / base for c in channels}


def table_of(rows):
    return path_table([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


# Serhii Puzyrov, "Markov Chain Attribution - Simple Explanation of Removal Effect" (2019),
# https://serhiipuzyrov.com/2019/07/markov-chain-attribution-simple-explanation-of-removal-effect/
# Its transition table (start > google ads 0.8, start > mailing 0.2, google ads > conv 0.5,
# > mailing 0.25, > null 0.25, mailing > conv 1) gives P(conv) = 0.8, removal effects
# 0.75 (google ads) and 0.5 (mailing), so 4 conversions split 2.4 / 1.6.
PUZYROV = [("google ads", 2, 1), ("mailing", 1, 0), ("google ads > mailing", 1, 0)]


def test_published_removal_effect_example():
    effects = removal_effects(table_of(PUZYROV))
    assert effects.channels == ("google ads", "mailing")
    assert effects.conversion_probability == pytest.approx(0.8, abs=1e-12)
    np.testing.assert_allclose(effects.removal_effect, [0.75, 0.5], atol=1e-12)
    credits = markov(table_of(PUZYROV))
    np.testing.assert_allclose(credits.conversions, [2.4, 1.6], atol=1e-12)


def test_analyzecore_three_channel_example():
    # AnalyzeCore, "Marketing Multi-Channel Attribution model with R (part 1)" (2016):
    # C1 > C2 > C3 converts, C1 and C2 > C3 do not. By hand: P(conv) = 2/3·1/2·1/2 +
    # 1/3·1/2 = 1/3; without C1 it is 1/6 (effect 1/2); without C2 or C3 it is 0.
    rows = [("C1 > C2 > C3", 1, 0), ("C1", 0, 1), ("C2 > C3", 0, 1)]
    effects = removal_effects(table_of(rows))
    assert effects.conversion_probability == pytest.approx(1 / 3, abs=1e-12)
    np.testing.assert_allclose(effects.removal_effect, [0.5, 1.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(markov(table_of(rows)).conversions, [0.2, 0.4, 0.4], atol=1e-12)


def random_rows(rng, channels, n_paths, max_len):
    rows = []
    for _ in range(n_paths):
        length = int(rng.integers(1, max_len + 1))
        text = " > ".join(rng.choice(channels, size=length))
        rows.append((text, int(rng.integers(0, 4)), int(rng.integers(0, 6))))
    if all(r[1] == 0 for r in rows):
        rows[0] = (rows[0][0], 1, rows[0][2])
    return rows


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("order", [1, 2, 3])
def test_removal_effects_equal_solve_free_reference(seed, order):
    rng = np.random.default_rng(seed)
    rows = random_rows(rng, ["push", "email", "in_app", "sms"], n_paths=25, max_len=5)
    base, expected = reference_effects(rows, order)
    effects = removal_effects(table_of(rows), order)
    # the reference stops with < 1e-15 of the mass in flight; the solve is exact to ~1e-15
    assert effects.conversion_probability == pytest.approx(base, abs=1e-12)
    for channel, effect in zip(effects.channels, effects.removal_effect, strict=True):
        assert effect == pytest.approx(expected[channel], abs=1e-10)


def test_credits_add_up_and_follow_removal_effects():
    rng = np.random.default_rng(11)
    rows = random_rows(rng, ["a", "b", "c", "d", "e"], n_paths=40, max_len=6)
    table = table_of(rows)
    for order in (1, 2):
        credits = markov(table, order)
        assert credits.conversions.sum() == pytest.approx(table.total_conversions, rel=1e-12)
        assert credits.value.sum() == pytest.approx(table.total_value, rel=1e-12)
        effects = np.asarray(list(credits.details["removal_effects"].values()))
        np.testing.assert_allclose(
            credits.conversions, effects / effects.sum() * table.total_conversions, rtol=1e-12
        )


def test_repeated_touches_do_not_change_order_one_removal_effects():
    # a self-loop only delays absorption, so collapsing repeats keeps every effect
    rows = [("a > a > b", 3, 1), ("b > b", 1, 4), ("a", 0, 2), ("b > a > a", 2, 2)]
    collapsed = [("a > b", 3, 1), ("b", 1, 4), ("a", 0, 2), ("b > a", 2, 2)]
    np.testing.assert_allclose(
        removal_effects(table_of(rows)).removal_effect,
        removal_effects(table_of(collapsed)).removal_effect,
        atol=1e-12,
    )


def test_chain_rows_are_probabilities():
    rng = np.random.default_rng(3)
    fitted = chain(table_of(random_rows(rng, ["x", "y", "z"], 30, 4)), order=2)
    totals = np.asarray(fitted.transient.sum(axis=1)).ravel() + fitted.to_conv
    assert np.all(totals <= 1 + 1e-12)
    assert fitted.states[0] == ()
    assert all(1 <= len(s) <= 2 for s in fitted.states[1:])


def test_no_conversions_is_insufficient_data_not_zero():
    credits = markov(table_of([("a > b", 0, 5), ("b", 0, 2)]))
    assert credits.status == "insufficient_data"
    assert np.isnan(credits.conversions).all()


@pytest.mark.parametrize("order", [0, 5])
def test_order_out_of_range_is_a_usage_error(order):
    with pytest.raises(UsageError, match="markov order"):
        markov(table_of(PUZYROV), order)


def simulate_journeys(rng, matrix, start, n):
    """Journeys drawn from a known order-1 chain; states 0..k-1 channels, k conv, k+1 null."""
    k = len(start)
    state = rng.choice(k, size=n, p=start)
    paths = [[int(s)] for s in state]
    alive = np.arange(n)
    outcome = np.empty(n, dtype=np.int64)
    while alive.size:
        cumulative = np.cumsum(matrix[state[alive]], axis=1)
        draw = (rng.random(alive.size)[:, None] > cumulative).sum(axis=1)
        ended = draw >= k
        outcome[alive[ended]] = draw[ended]
        for i, nxt in zip(alive[~ended], draw[~ended], strict=True):
            paths[i].append(int(nxt))
        state[alive[~ended]] = draw[~ended]
        alive = alive[~ended]
    return paths, outcome


def test_removal_effects_recover_a_known_chain():
    names = ["push", "email", "in_app"]
    start = np.array([0.5, 0.3, 0.2])
    # rows: to push, email, in_app, conv, null
    matrix = np.array(
        [
            [0.10, 0.25, 0.10, 0.15, 0.40],
            [0.20, 0.05, 0.15, 0.05, 0.55],
            [0.05, 0.10, 0.05, 0.30, 0.50],
        ]
    )
    truth = {(): {(names[j],): p for j, p in enumerate(start)}}
    for i, name in enumerate(names):
        row = {(names[j],): matrix[i, j] for j in range(3)}
        truth[(name,)] = row | {CONV: matrix[i, 3], NULL: matrix[i, 4]}
    true_base = forward_absorption(truth)
    true_effect = {c: 1 - forward_absorption(truth, c) / true_base for c in names}

    rng = np.random.default_rng(20260101)
    paths, outcome = simulate_journeys(rng, matrix, start, 200_000)
    counts = Counter(
        (" > ".join(names[s] for s in p), int(o == 3)) for p, o in zip(paths, outcome, strict=True)
    )
    keys = sorted({text for text, _ in counts})
    table = path_table(keys, [counts[(t, 1)] for t in keys], [counts[(t, 0)] for t in keys])
    effects = removal_effects(table)
    # P(conv) is a proportion of 200k journeys: SE = sqrt(0.24 * 0.76 / 2e5) ≈ 0.001, so
    # 0.004 is 4 SE. Removal effects are smooth in the transition probabilities (each
    # pinned to ~±0.002 by ≥ 40k visits); over seeds 0-4 they missed by at most 0.0035,
    # so 0.012 is about 4 of their SDs.
    assert effects.conversion_probability == pytest.approx(true_base, abs=0.004)
    for channel, effect in zip(effects.channels, effects.removal_effect, strict=True):
        assert effect == pytest.approx(true_effect[channel], abs=0.012), channel
