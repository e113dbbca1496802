"""A seeded world where surrogacy holds: Y depends on the treatment only through S.

X ~ N(0, I_2); S1 = 0.5 X1 + 0.4 W + e1, S2 = 0.3 X2 + 0.3 W + e2 (e ~ N(0, 1));
Y = S1 + 0.5 S2^2 + 0.5 X1 + e (nonlinear h) or S1 + 0.5 S2 + 0.5 X1 + e (linear h).
The true long-term ATE: 0.4 + 0.5 E[(a + 0.3)^2 - a^2] = 0.4 + 0.5 * 0.09 = 0.445 for the
nonlinear h (a = 0.3 X2 + e2 has mean 0), 0.4 + 0.5 * 0.3 = 0.55 for the linear one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRUE_ATE = {"nonlinear": 0.445, "linear": 0.55}


@dataclass(frozen=True)
class World:
    s_h: np.ndarray
    x_h: np.ndarray
    y_h: np.ndarray
    w: np.ndarray
    s: np.ndarray
    x: np.ndarray
    p: np.ndarray
    y: np.ndarray  # the experiment's long-term outcome (unseen by the projection)


def _surrogates(
    rng: np.random.Generator, x: np.ndarray, w: np.ndarray, tau: tuple[float, float] = (0.4, 0.3)
) -> np.ndarray:
    n = x.shape[0]
    return np.column_stack(
        [
            0.5 * x[:, 0] + tau[0] * w + rng.normal(size=n),
            0.3 * x[:, 1] + tau[1] * w + rng.normal(size=n),
        ]
    )


def _outcome(rng: np.random.Generator, s: np.ndarray, x: np.ndarray, h: str) -> np.ndarray:
    s2 = 0.5 * s[:, 1] ** 2 if h == "nonlinear" else 0.5 * s[:, 1]
    return s[:, 0] + s2 + 0.5 * x[:, 0] + rng.normal(size=s.shape[0])


def make_world(
    rng: np.random.Generator, n_h: int, n_e: int, *, h: str = "nonlinear", targeted: bool = False
) -> World:
    x_h = rng.normal(size=(n_h, 2))
    s_h = _surrogates(rng, x_h, rng.binomial(1, 0.5, n_h))
    y_h = _outcome(rng, s_h, x_h, h)
    x = rng.normal(size=(n_e, 2))
    # targeted: more active users (X1) are treated more, p in about (0.2, 0.8)
    p = 1 / (1 + np.exp(-(0.6 * x[:, 0] - 0.3 * x[:, 1]))) if targeted else np.full(n_e, 0.5)
    w = rng.binomial(1, p).astype(float)
    s = _surrogates(rng, x, w)
    return World(s_h, x_h, y_h, w, s, x, p, _outcome(rng, s, x, h))


def make_class_window(
    rng: np.random.Generator,
    n_h: int,
    n_e: int,
    tau: tuple[float, float],
    *,
    direct: float = 0.0,
) -> World:
    """A class's past window (nonlinear h): the treatment moves (S1, S2) by `tau`, and
    by `direct` moves Y outside the surrogates (surrogacy fails unless 0). The true
    long-term effect is tau1 + 0.5 tau2^2 + direct."""
    x_h = rng.normal(size=(n_h, 2))
    s_h = _surrogates(rng, x_h, rng.binomial(1, 0.5, n_h))
    y_h = _outcome(rng, s_h, x_h, "nonlinear")
    x = rng.normal(size=(n_e, 2))
    w = rng.binomial(1, 0.5, n_e).astype(float)
    s = _surrogates(rng, x, w, tau)
    y = _outcome(rng, s, x, "nonlinear") + direct * w
    return World(s_h, x_h, y_h, w, s, x, np.full(n_e, 0.5), y)
