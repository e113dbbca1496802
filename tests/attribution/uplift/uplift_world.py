"""A small per-decision world with known effects, for the uplift tests (numpy only).

Each class has `n` decisions of users with covariates (activity, tenure, tier, country,
platform). Active users both get more targeted sends and have better outcomes, so the
naive sent-minus-held-out difference of targeted classes is biased upward. True effects
are heterogeneous; `truth[class][objective]` is the mean over the class's decisions of
the conditional effect τ(x_i) = E[Y(1) - Y(0) | x_i] (known in closed form here), which is
the estimand of a CI conditional on the covariates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


@dataclass(frozen=True)
class ClassSpec:
    channel: str
    randomized_share: float  # share of decisions drawn as a holdout with propensity 0.8
    targeting: float  # slope of the targeting propensity in activity
    effect: float  # scale of every effect (0: none)
    harm: float = 0.0  # extra opt-out log-odds when sent
    log_propensity: bool = True


SPECS = {
    "digest_email": ClassSpec("email", 1.0, 0.0, 1.0),
    "promo_push": ClassSpec("push", 0.3, 1.2, 1.0, harm=1.0),
    "quiet_push": ClassSpec("push", 0.3, 1.2, 0.0),
    "banner": ClassSpec("in_app", 0.0, 0.8, 0.6, log_propensity=False),
}
OBJECTIVES = ("conversion", "engagement", "retention", "reachability")
BINARY = ("conversion", "reachability")


def make_decisions(
    n: int = 3000, seed: int = 0, specs: dict[str, ClassSpec] | None = None
) -> tuple[pl.DataFrame, dict[str, dict[str, float]]]:
    """`n` decisions per class and the true mean conditional effects."""
    rng = np.random.default_rng(seed)
    frames, truth = [], {}
    for k, (name, spec) in enumerate((specs or SPECS).items()):
        activity = rng.normal(size=n)
        tenure = rng.exponential(1.5, size=n)
        premium = rng.random(n) < 0.3
        country = rng.choice(["US", "GB", "DE"], size=n, p=[0.5, 0.3, 0.2])
        platform = rng.choice(["ios", "android", "web"], size=n)
        randomized = rng.random(n) < spec.randomized_share
        targeted = np.clip(_sigmoid(-0.2 + spec.targeting * activity), 0.05, 0.95)
        p = np.where(randomized, 0.8, targeted)
        T = (rng.random(n) < p).astype(np.int8)
        e = spec.effect
        # conversion: free users convert more when sent, new users most
        base_c = -2.5 + 0.7 * activity - 0.2 * tenure
        lift_c = e * np.where(premium, 0.1, 0.6 + 0.3 * (tenure < 1))
        p0c, p1c = _sigmoid(base_c), _sigmoid(base_c + lift_c)
        # engagement minutes: linear in activity, effect grows with activity
        tau_e = e * (6 + 3 * activity)
        y0e = 40 + 25 * activity + 10 * premium + rng.normal(0, 25, size=n)
        # retention: active days out of 7
        base_r = -0.3 + 0.9 * activity
        q0, q1 = _sigmoid(base_r), _sigmoid(base_r + e * 0.35)
        # reachability: opt-outs, raised by `harm`
        base_o = -3.5 + 0.2 * activity
        p0o, p1o = _sigmoid(base_o), _sigmoid(base_o + spec.harm + 0.1 * e)
        u = rng.random((n, 3))
        conversion = np.where(T == 1, u[:, 0] < p1c, u[:, 0] < p0c).astype(float)
        engagement = y0e + T * tau_e
        retention = rng.binomial(7, np.where(T == 1, q1, q0)).astype(float)
        reachability = np.where(T == 1, u[:, 2] < p1o, u[:, 2] < p0o).astype(float)
        truth[name] = {
            "conversion": float(np.mean(p1c - p0c)),
            "engagement": float(np.mean(tau_e)),
            "retention": float(np.mean(7 * (q1 - q0))),
            "reachability": float(np.mean(p1o - p0o)),
        }
        frames.append(
            pl.DataFrame(
                {
                    "send_id": [f"{name}-{i}" for i in range(n)],
                    "message_class": name,
                    "channel": spec.channel,
                    "treated": T.astype(bool),
                    "propensity": p if spec.log_propensity else np.full(n, np.nan),
                    "randomized": randomized,
                    "activity": activity,
                    "tenure_years": tenure,
                    "product_tier": np.where(premium, "premium", "free"),
                    "country": country,
                    "platform": platform,
                    "conversion": conversion,
                    "engagement": engagement,
                    "retention": retention,
                    "reachability": reachability,
                }
            ).with_columns(pl.col("propensity").fill_nan(None))
        )
        del k
    return pl.concat(frames), truth


def load_world(con, world) -> None:
    """Write a simulated world's frames straight into a warehouse made by `store.connect`.

    Stands in for `upshot load` (not needed to test estimation): `users` grows one column
    per covariate, then every frame is appended by column name.
    """
    types = {pl.String: "VARCHAR", pl.Int64: "BIGINT", pl.Float64: "DOUBLE", pl.Boolean: "BOOLEAN"}
    for name in world.users.columns:
        if name != "user_id":
            kind = types.get(world.users.schema[name], "VARCHAR")
            con.execute(f'ALTER TABLE users ADD COLUMN "{name}" {kind}')
    for table, frame in (
        ("users", world.users),
        ("sends", world.sends),
        ("outcomes", world.outcomes),
    ):
        con.register("incoming", frame.to_arrow())
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
        con.unregister("incoming")
