"""Uplift estimation: EconML called directly as the reference, and simulations with known truth."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import polars as pl
import pytest

from tests.attribution.uplift.uplift_world import (
    BINARY,
    OBJECTIVES,
    SPECS,
    load_world,
    make_decisions,
)
from upshot import store
from upshot.attribution import estimate_uplift, uplift_from_warehouse
from upshot.attribution.uplift.frames import encode_covariates
from upshot.attribution.uplift.nuisances import KnownOutcome, KnownPropensity, base_model
from upshot.attribution.uplift.sampling import capped_folds
from upshot.config import Config, Uplift
from upshot.errors import InputError

COVARIATES = ["activity", "tenure_years", "product_tier", "country", "platform"]
FAST = Uplift(nuisance="linear", segments=())


def same(a, b) -> bool:
    """Records equal field by field, NaN equal to NaN (it never equals itself)."""
    return pl.DataFrame(a.to_dicts()).equals(pl.DataFrame(b.to_dicts()))


def _by(results, segment="all"):
    return {(e.message_class, e.objective): e for e in results.estimates if e.segment == segment}


@pytest.fixture(scope="module")
def decisions():
    return make_decisions(2500, seed=11)


@pytest.mark.parametrize(
    ("estimator", "nuisance"),
    [
        ("linear_dml", "lightgbm"),
        ("linear_dml", "linear"),
        ("dr_learner", "linear"),
        ("causal_forest", "linear"),
    ],
)
def _aipw_by_hand(y, T, X, p, folds, nuisance, binary, seed):
    """The textbook cross-fitted AIPW score with per-arm scikit-learn/LightGBM models
    (LightGBM boosted from a linear start, as `nuisances.arm_outcomes` does):
    ψ = mu1 − mu0 + T(Y − mu1)/p − (1 − T)(Y − mu0)/(1 − p); returns (ψ, mu (n, 2))."""
    mu = np.empty((len(y), 2))
    for train, test in folds:
        for arm in (0, 1):
            rows = train[T[train] == arm]
            discrete = all(np.ptp(y[tr[T[tr] == a]]) > 0 for tr, _ in folds for a in (0, 1))
            if nuisance == "lightgbm":
                # boosting from a start: the least-squares fit (numeric) or the log-odds of
                # the arm's share (0/1) is the trees' init_score, and the prediction adds
                # the trees' raw score to it
                if binary and discrete:
                    share = y[rows].mean()
                    lin = lambda Z, s=share: np.full(len(Z), math.log(s / (1 - s)))  # noqa: E731
                else:
                    lin = (
                        base_model("linear", binary=False, seed=seed).fit(X[rows], y[rows]).predict
                    )
                trees = base_model("lightgbm", binary=binary and discrete, seed=seed)
                trees.fit(X[rows], y[rows], init_score=lin(X[rows]))
                raw = lin(X[test]) + trees.predict(X[test], raw_score=True)
                mu[test, arm] = 1 / (1 + np.exp(-raw)) if binary and discrete else raw
            elif binary and discrete:
                model = base_model(nuisance, binary=True, seed=seed).fit(X[rows], y[rows])
                mu[test, arm] = model.predict_proba(X[test])[:, 1]
            else:
                model = base_model(nuisance, binary=False, seed=seed).fit(X[rows], y[rows])
                mu[test, arm] = model.predict(X[test])
    psi = mu[:, 1] - mu[:, 0] + T * (y - mu[:, 1]) / p - (1 - T) * (y - mu[:, 0]) / (1 - p)
    return psi, mu


@pytest.mark.parametrize(
    ("estimator", "nuisance"),
    [
        ("linear_dml", "lightgbm"),
        ("linear_dml", "linear"),
        ("dr_learner", "linear"),
        ("causal_forest", "linear"),
    ],
)
def test_the_wrapper_equals_a_hand_written_aipw_and_econml(decisions, estimator, nuisance):
    from econml.dml import CausalForestDML, LinearDML
    from econml.dr import LinearDRLearner
    from scipy.stats import norm
    from sklearn.model_selection import StratifiedKFold

    frame = decisions[0].filter(pl.col("message_class") == "promo_push")
    if nuisance == "lightgbm":
        frame = frame.head(1500)  # boosting is the slow part; the equality needs no size
    settings = Uplift(
        estimator=estimator, nuisance=nuisance, segments=(), seed=3, nuisance_max_rows=1000
    )
    # boosted nuisances and forests cost more: one binary and one continuous objective
    cheap = nuisance == "linear" and estimator != "causal_forest"
    objectives = OBJECTIVES if cheap else ("conversion", "engagement")
    ours = _by(
        estimate_uplift(
            frame, outcomes=objectives, covariates=COVARIATES, settings=settings, refute=False
        )
    )
    # the same frame and settings, by hand
    X = encode_covariates(frame, COVARIATES).X
    T = frame["treated"].cast(pl.Int8).to_numpy()
    p = np.clip(frame["propensity"].to_numpy(), 0.01, 0.99)
    folds = list(StratifiedKFold(3, shuffle=True, random_state=3).split(np.zeros((len(T), 1)), T))
    # the nuisances train on a stratified 1000 of each fold's training rows (test_sampling.py)
    strata = T + 2 * frame["randomized"].cast(pl.Int8).to_numpy()
    folds, _ = capped_folds(folds, strata, 1000, 3)
    assert all(len(train) == 1000 for train, _ in folds)
    z = norm.ppf(0.975)
    for name in objectives:
        y = frame[name].to_numpy()
        psi, mu = _aipw_by_hand(y, T, X, p, folds, nuisance, name in BINARY, 3)
        point, se = psi.mean(), psi.std(ddof=1) / np.sqrt(len(psi))
        got = ours[("promo_push", name)]
        assert got.status == "ok"
        assert got.method == "dr_score_mean"
        # identical computations: equal up to floating-point noise
        assert got.ate == pytest.approx(point, rel=1e-9, abs=1e-12)
        assert got.ate_se == pytest.approx(se, rel=1e-9)
        assert got.ate_ci_lower == pytest.approx(point - z * se, rel=1e-9, abs=1e-12)
        assert got.ate_ci_upper == pytest.approx(point + z * se, rel=1e-9, abs=1e-12)
        assert got.naive_effect == pytest.approx(y[T == 1].mean() - y[T == 0].mean())
        # EconML given the same nuisances: its DR learner's ATE (the mean of its
        # pseudo-outcomes) is the same number, and the sensitivity comes from it
        common = {"cv": folds, "random_state": 3}
        W = np.column_stack([mu, p])
        if estimator == "linear_dml":
            est = LinearDML(
                model_y=KnownOutcome(), model_t=KnownPropensity(), discrete_treatment=True, **common
            )
        elif estimator == "dr_learner":
            est = LinearDRLearner(
                model_propensity=KnownPropensity(),
                model_regression=KnownOutcome(by_arm=True),
                min_propensity=0,
                **common,
            )
        else:
            est = CausalForestDML(
                model_y=KnownOutcome(),
                model_t=KnownPropensity(),
                discrete_treatment=True,
                n_jobs=1,
                **common,
            )
        est.fit(y, T, X=X, W=W)
        if estimator == "dr_learner":
            econml_ate = np.ravel(est.ate_inference(X=X).mean_point)[0]
            assert got.ate == pytest.approx(econml_ate, rel=1e-7)
        extra = {"T": 1} if estimator == "dr_learner" else {}
        assert got.robustness_value == pytest.approx(est.robustness_value(alpha=0.05, **extra))


def _coverage(world_seeds, users):
    from upshot.simulate import make_world

    hits = []
    for seed in world_seeds:
        world = make_world(users=users, weeks=1, seed=seed)
        con = store.connect(":memory:", read_only=False)
        load_world(con, world)
        results = uplift_from_warehouse(
            con, Config(), settings=dataclasses.replace(FAST, seed=seed), refute=False
        )
        for e in results.estimates:
            truth = world.truth["uplift"][e.message_class][e.objective]
            hits.append(e.status == "ok" and e.ate_ci_lower <= truth <= e.ate_ci_upper)
    return hits


def test_ci_covers_the_true_ate_on_a_simulated_world():
    # 32 class x objective cells of one world; 95% CIs, so >= 90% leaves room for 1-3 misses
    hits = _coverage([0], users=3000)
    assert len(hits) == 32
    assert np.mean(hits) >= 0.9


@pytest.mark.slow
def test_ci_covers_the_true_ate_over_several_worlds():
    # 3 worlds x 8 classes x 4 objectives = 96 cells at nominal 95%: binomial sd 2.2%,
    # so a valid CI falls under 90% with probability < 1%
    hits = _coverage([1, 2, 3], users=3000)
    assert len(hits) == 96
    assert np.mean(hits) >= 0.9


def test_naive_is_biased_on_targeted_decisions_and_the_causal_estimate_is_not():
    from upshot.simulate import make_world

    world = make_world(users=4000, weeks=1, seed=5)
    frame = (
        world.sends.join(world.users, on="user_id")
        .filter(~pl.col("randomized"))
        .join(world.effects, on="send_id")
    )
    con = store.connect(":memory:", read_only=False)
    load_world(con, world)
    from upshot.attribution.uplift.frames import decision_frame

    decisions = decision_frame(con, Config(), objectives=["engagement"]).filter(
        ~pl.col("randomized")
    )
    covariates = [c for c in world.users.columns if c != "user_id"]
    results = estimate_uplift(
        decisions, outcomes=["engagement"], covariates=covariates, settings=FAST, refute=False
    )
    truth = frame.group_by("message_class").agg(pl.col("engagement").mean())
    truth = dict(truth.iter_rows())
    for e in results.estimates:
        bias_naive = (e.naive_effect - truth[e.message_class]) / e.ate_se
        bias_causal = (e.ate - truth[e.message_class]) / e.ate_se
        # active users are targeted more and stream more anyway: the naive gap is many SEs
        # too high (4.7 to 16 SE here), while the causal estimate sits within its sampling
        # error. The SE is that of per-arm outcome models, which extrapolate where an arm is
        # rare: 3-40% wider than the linear-θ score's, hence 4 SE rather than 5.
        assert bias_naive > 4, e.message_class
        assert abs(bias_causal) < 3.5, e.message_class


def test_same_inputs_and_seed_give_identical_estimates(decisions):
    frame = decisions[0].filter(pl.col("message_class") == "banner").head(1500)
    settings = Uplift(segments=("country",), seed=4, nuisance_max_rows=800)

    def run(s):
        return estimate_uplift(
            frame, outcomes=["conversion", "engagement"], covariates=COVARIATES, settings=s,
            refute=False,
        )  # fmt: skip

    first, second = run(settings), run(settings)
    assert same(first, second)
    assert first.covariance == second.covariance
    other = run(dataclasses.replace(settings, seed=5))
    assert not same(other, first)


def test_guards_give_statuses_and_the_run_goes_on():
    frame, _ = make_decisions(600, seed=2, specs={"promo_push": SPECS["promo_push"]})
    one_arm = frame.with_columns(
        pl.lit("one_arm").alias("message_class"), pl.lit(True).alias("treated")
    )
    few = frame.head(150).with_columns(pl.lit("few").alias("message_class"))
    sure = frame.with_columns(
        pl.lit("no_overlap").alias("message_class"), pl.lit(0.999).alias("propensity")
    )
    flat = frame.with_columns(
        pl.lit("flat").alias("message_class"), pl.lit(0.0).alias("reachability")
    )
    never = frame.with_columns(
        pl.lit("never_sent").alias("message_class"), pl.lit(False).alias("treated")
    )
    # a fifth of the decisions at a logged propensity of 0.999: beyond the 0.99 clip
    poor = frame.with_columns(
        pl.lit("poor").alias("message_class"),
        pl.when(pl.int_range(pl.len()) % 5 == 0)
        .then(0.999)
        .otherwise(pl.col("propensity"))
        .alias("propensity"),
    )
    everything = pl.concat([frame, one_arm, few, sure, flat, never, poor])
    results = estimate_uplift(
        everything, outcomes=OBJECTIVES, covariates=COVARIATES, settings=FAST, refute=False
    )
    got = _by(results)
    # every decision sent: nothing to compare with, and the status says what to log
    assert {got[("one_arm", o)].status for o in OBJECTIVES} == {"no_holdout"}
    message = got[("one_arm", "engagement")].details["message"]
    assert message.startswith("no hold-out decisions: log every eligible decision")
    assert "treated = false" in message
    assert {got[("never_sent", o)].status for o in OBJECTIVES} == {"insufficient_data"}
    # 20% clipped > max_clipped_share 10%: estimated, but poor_overlap, not ok
    for o in OBJECTIVES:
        row = got[("poor", o)]
        assert row.status == "poor_overlap"
        assert row.clipped_share == pytest.approx(0.2, abs=1 / 600)
        assert math.isfinite(row.ate)
        assert math.isfinite(row.ate_se)
    assert got[("promo_push", "engagement")].clipped_share == 0.0
    assert got[("no_overlap", "engagement")].clipped_share == 1.0
    assert {got[("few", o)].status for o in OBJECTIVES} == {"insufficient_data"}
    assert {got[("no_overlap", o)].status for o in OBJECTIVES} == {"no_overlap"}
    assert got[("flat", "reachability")].status == "zero_variance"
    assert got[("flat", "engagement")].status == "ok"
    assert {got[("promo_push", o)].status for o in OBJECTIVES} == {"ok"}
    for e in results.estimates:
        if e.status not in ("ok", "poor_overlap", "confounding_risk"):
            assert math.isnan(e.ate)
            assert math.isnan(e.ate_ci_lower)
            assert math.isnan(e.ate_se)
    assert got[("no_overlap", "engagement")].naive_effect == pytest.approx(
        got[("promo_push", "engagement")].naive_effect
    )
    assert results.classes["no_overlap"]["clipped_share"] == 1.0


def test_a_class_whose_fit_breaks_is_failed_and_the_others_go_on(decisions, monkeypatch):
    import upshot.attribution.uplift.classfit as uplift

    real = uplift.fit_objective

    def flaky(y, T, X, p, *args, **kw):
        if (
            len(y) == 2500 and X.shape[1] == 7 and p.min() == p.max()
        ):  # digest_email: 0.8 everywhere
            raise np.linalg.LinAlgError("singular matrix")
        return real(y, T, X, p, *args, **kw)

    monkeypatch.setattr(uplift, "fit_objective", flaky)
    frame = decisions[0].filter(pl.col("message_class").is_in(["digest_email", "promo_push"]))
    got = _by(
        estimate_uplift(
            frame, outcomes=OBJECTIVES, covariates=COVARIATES, settings=FAST, refute=False
        )
    )
    assert got[("digest_email", "engagement")].status == "failed:LinAlgError: singular matrix"
    assert got[("promo_push", "engagement")].status == "ok"


def test_linear_invariances_of_estimates_and_covariance(decisions):
    # with linear nuisances every step is linear in y: 2y + 3 doubles the effect and its
    # standard error, -y negates the effect, and the covariance of (y, 2y + 3) is 2 se²
    frame = (
        decisions[0]
        .filter(pl.col("message_class") == "promo_push")
        .with_columns(
            (2 * pl.col("engagement") + 3).alias("scaled"), (-pl.col("engagement")).alias("negated")
        )
    )
    results = estimate_uplift(
        frame, outcomes=["engagement", "scaled", "negated"], covariates=COVARIATES, binary=[],
        settings=FAST, refute=False,
    )  # fmt: skip
    got = _by(results)
    base = got[("promo_push", "engagement")]
    assert got[("promo_push", "scaled")].ate == pytest.approx(2 * base.ate, rel=1e-9)
    assert got[("promo_push", "scaled")].ate_se == pytest.approx(2 * base.ate_se, rel=1e-9)
    assert got[("promo_push", "negated")].ate == pytest.approx(-base.ate, rel=1e-9)
    assert got[("promo_push", "negated")].ate_se == pytest.approx(base.ate_se, rel=1e-9)
    cov = {(c.objective_a, c.objective_b): c.covariance for c in results.covariance}
    assert cov[("engagement", "engagement")] == pytest.approx(base.ate_se**2, rel=1e-9)
    assert cov[("engagement", "scaled")] == pytest.approx(2 * base.ate_se**2, rel=1e-9)
    assert cov[("engagement", "negated")] == pytest.approx(-(base.ate_se**2), rel=1e-9)
    assert cov[("scaled", "engagement")] == cov[("engagement", "scaled")]


def test_segments_have_cis_and_small_cells_are_suppressed(decisions):
    frame = decisions[0].filter(pl.col("message_class") == "digest_email")
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 40)
        .then(pl.lit("LU"))
        .otherwise(pl.col("country"))
        .alias("country")
    )
    settings = dataclasses.replace(FAST, segments=("country", "product_tier"), min_segment_size=200)
    results = estimate_uplift(
        frame, outcomes=["engagement"], covariates=COVARIATES, settings=settings, refute=False
    )
    rows = {e.segment: e for e in results.estimates}
    assert set(rows) == {
        "all", "country=DE", "country=GB", "country=LU", "country=US",
        "product_tier=free", "product_tier=premium",
    }  # fmt: skip
    small = rows["country=LU"]
    assert small.status == "insufficient_data"
    assert math.isnan(small.ate)
    assert small.n_treated + small.n_control == 40
    for label in ("country=US", "product_tier=free"):
        cell = rows[label]
        assert cell.status == "ok"
        assert cell.ate_ci_lower < cell.ate < cell.ate_ci_upper
    labels = {c.segment for c in results.covariance}
    assert "country=LU" not in labels
    assert "country=US" in labels


def test_parallel_jobs_give_the_same_estimates(decisions):
    frame = decisions[0].filter(pl.col("message_class").is_in(["digest_email", "quiet_push"]))

    def run(jobs):
        return estimate_uplift(
            frame, outcomes=["engagement"], covariates=COVARIATES, settings=FAST, refute=False,
            jobs=jobs,
        )  # fmt: skip

    assert same(run(2), run(1))


@pytest.mark.slow
def test_covariance_matches_the_spread_of_estimates_over_replications():
    # Two correlated objectives (minutes, and minutes plus noise on a different scale).
    # Over replications that redraw sends and noise for the same users (the CIs are
    # conditional on the covariates, like the sample-ATE truth), the empirical correlation
    # of the two ATE estimates must match the one the covariance table reports. With 80
    # replications the empirical correlation has sd ~ (1 - rho²)/sqrt(80) < 0.07, hence
    # the 0.15 tolerance.
    rng = np.random.default_rng(0)
    n = 800
    activity = rng.normal(size=n)
    p = 1 / (1 + np.exp(-activity))
    pairs, reported = [], []
    for rep in range(80):
        T = rng.random(n) < p
        minutes = 30 + 20 * activity + T * (5 + 2 * activity) + rng.normal(0, 15, n)
        frame = pl.DataFrame(
            {
                "message_class": "c",
                "treated": T,
                "propensity": p,
                "activity": activity,
                "minutes": minutes,
                "other": 0.5 * minutes + rng.normal(0, 10, n),
            }
        )
        results = estimate_uplift(
            frame,
            outcomes=["minutes", "other"],
            covariates=["activity"],
            binary=[],
            settings=dataclasses.replace(FAST, seed=rep),
            refute=False,
        )
        got = _by(results)
        pairs.append((got[("c", "minutes")].ate, got[("c", "other")].ate))
        cov = {(c.objective_a, c.objective_b): c.covariance for c in results.covariance}
        reported.append(
            cov[("minutes", "other")]
            / math.sqrt(cov[("minutes", "minutes")] * cov[("other", "other")])
        )
    empirical = np.corrcoef(np.array(pairs), rowvar=False)[0, 1]
    assert np.mean(reported) == pytest.approx(empirical, abs=0.15)
    assert np.mean(reported) > 0.3  # the objectives do move together


def test_a_class_larger_than_max_rows_per_fit_is_subsampled(decisions):
    frame = decisions[0].filter(pl.col("message_class") == "promo_push")
    settings = dataclasses.replace(FAST, max_rows_per_fit=1000, segments=("product_tier",))
    results = estimate_uplift(
        frame, outcomes=["engagement"], covariates=COVARIATES, settings=settings, refute=False
    )
    overall = _by(results)[("promo_push", "engagement")]
    assert overall.status == "ok"
    assert overall.details["fit_rows"] == 1000
    assert overall.details["n"] == 2500
    # the sample keeps every design stratum's share (to the row), and says so
    fit = overall.details["sampling"]["fit"]
    assert (fit["scheme"], fit["rows"], fit["of"], fit["seed"]) == ("stratified", 1000, 2500, 0)
    assert sum(drawn for drawn, _ in fit["counts"].values()) == 1000
    for drawn, available in fit["counts"].values():
        assert abs(drawn - available * 1000 / 2500) < 1
    # 3 folds of the 1000: the nuisances (cap 200,000) train on every other fold's rows
    nuisance = overall.details["sampling"]["nuisance"]
    assert nuisance["scheme"] == "all"
    assert sorted(nuisance["train_rows"]) == [666, 667, 667]
    # counts and the naive difference describe every decision, not the subsample
    assert overall.n_treated + overall.n_control == 2500
    tiers = [e for e in results.estimates if e.segment.startswith("product_tier=")]
    assert sum(e.n_treated + e.n_control for e in tiers) == 2500
    # segment estimates carry the same provenance
    assert all(e.details["sampling"]["fit"] == fit for e in tiers)


def test_a_lazy_frame_gives_the_eager_frames_estimates(decisions, tmp_path):
    # the warehouse path hands estimate_uplift a Parquet scan, read one class at a time
    frame = decisions[0].sort("message_class")
    frame.write_parquet(tmp_path / "d.parquet", row_group_size=1000)
    settings = dataclasses.replace(FAST, max_rows_per_fit=1500, segments=("country",))

    def run(source):
        return estimate_uplift(
            source, outcomes=["conversion", "engagement"], covariates=COVARIATES,
            settings=settings, refute=False,
        )  # fmt: skip

    eager, lazy = run(frame), run(pl.scan_parquet(tmp_path / "d.parquet"))
    assert same(eager, lazy)
    assert eager.covariance == lazy.covariance
    assert eager.classes.keys() == lazy.classes.keys() == set(SPECS)
    # the same boundary checks, with the same row numbers
    broken = frame.with_columns(
        treated=pl.when(pl.int_range(pl.len()) == 2600).then(None).otherwise(pl.col("treated"))
    )
    broken.write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match=r"^frame row 2601: treated must be 0/1"):
        run(pl.scan_parquet(tmp_path / "bad.parquet"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_dml_ate_is_the_ate_when_the_effect_is_not_linear(seed):
    """The effect exp(a) grows with `a`, and so does the propensity. EconML's mean of the
    linear CATE θ(a) is then an overlap-weighted average (the R-learner weights rows by
    (T − p)²), far from the ATE; the mean of the doubly robust scores is the ATE."""
    from econml.dml import LinearDML
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(seed)
    n = 40_000
    a = rng.normal(size=n)
    p = np.clip(1 / (1 + np.exp(-1.5 * a)), 0.05, 0.95)
    T = (rng.random(n) < p).astype(np.int8)
    tau = np.exp(a)
    y = a + T * tau + rng.normal(size=n)
    frame = pl.DataFrame({"message_class": "c", "treated": T, "propensity": p, "a": a, "y": y})
    settings = Uplift(nuisance="linear", segments=(), seed=seed)
    results = estimate_uplift(
        frame, outcomes=["y"], covariates=["a"], settings=settings, refute=False
    )
    (got,) = results.estimates
    truth = tau.mean()  # the sample ATE: the mean of the true individual effects
    # 3 SE: a 99.7% band per seed, so three seeds fail together by chance 1 time in 10^7
    assert abs(got.ate - truth) < 3 * got.ate_se
    # the estimand the fix replaces: EconML's own mean of θ(a), some 20 SE too low here
    folds = list(StratifiedKFold(3, shuffle=True, random_state=seed).split(a[:, None], T))
    est = LinearDML(
        model_y=LinearRegression(), model_t=KnownPropensity(), discrete_treatment=True, cv=folds
    )
    est.fit(y, T, X=a[:, None], W=p[:, None])
    inference = est.ate_inference(X=a[:, None])
    linear, linear_se = np.ravel(inference.mean_point)[0], np.ravel(inference.stderr_mean)[0]
    assert truth - linear > 10 * linear_se


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"message_class": 3}, r"^frame row 4: message_class is empty$"),
        ({"treated": 3}, r"^frame row 4: treated must be 0/1 or true/false$"),
        ({"engagement": 3}, r"^frame row 4: outcome engagement is missing or not finite$"),
        ({"propensity": 3}, r"^frame row 4: propensity must be in \(0, 1\]$"),
        # several problems: the first check in order names its first bad row
        ({"propensity": 1, "engagement": 5, "treated": 6}, r"^frame row 7: treated must"),
    ],
)
def test_bad_rows_are_named_by_the_first_failing_check(decisions, broken, message):
    frame = decisions[0].head(10)
    bad = {"message_class": None, "treated": None, "engagement": math.nan, "propensity": 1.5}
    index = pl.int_range(pl.len())
    frame = frame.with_columns(
        pl.when(index == row).then(pl.lit(bad[column])).otherwise(pl.col(column)).alias(column)
        for column, row in broken.items()
    )
    with pytest.raises(InputError, match=message):
        estimate_uplift(frame, outcomes=["engagement"], covariates=COVARIATES, settings=FAST)


@pytest.mark.parametrize("estimator", ["linear_dml", "dr_learner", "causal_forest"])
def test_gates_are_segment_means_of_the_scores_and_average_to_the_ate(decisions, estimator):
    # the segment column splits every row into cells big enough to estimate, so the
    # n-weighted mean of the GATEs is the mean of all the scores: the ATE, to rounding
    frame = decisions[0].filter(pl.col("message_class") == "promo_push")
    settings = Uplift(
        estimator=estimator, nuisance="linear", segments=("product_tier",), min_segment_size=50
    )
    results = estimate_uplift(
        frame, outcomes=["engagement", "conversion"], covariates=COVARIATES, settings=settings,
        refute=False,
    )  # fmt: skip
    X = encode_covariates(frame, COVARIATES).X
    T = frame["treated"].cast(pl.Int8).to_numpy()
    p = np.clip(frame["propensity"].to_numpy(), 0.01, 0.99)
    from sklearn.model_selection import StratifiedKFold

    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(np.zeros((len(T), 1)), T))
    tiers = frame["product_tier"].to_numpy()
    for name in ("engagement", "conversion"):
        rows = {e.segment: e for e in results.estimates if e.objective == name}
        cells = [e for label, e in rows.items() if label.startswith("product_tier=")]
        assert len(cells) == 2
        assert all(e.status == "ok" and e.method == "dr_score_mean" for e in cells)
        n = np.array([e.n_treated + e.n_control for e in cells])
        weighted = float(np.sum(n * np.array([e.ate for e in cells])) / n.sum())
        assert weighted == pytest.approx(rows["all"].ate, rel=1e-12, abs=1e-15)
        # each GATE: the mean of the hand-written AIPW scores over the segment, sd/sqrt(n)
        psi, _ = _aipw_by_hand(frame[name].to_numpy(), T, X, p, folds, "linear",
                               name in BINARY, 0)  # fmt: skip
        for e in cells:
            level = e.segment.split("=", 1)[1]
            part = psi[tiers == level]
            assert e.ate == pytest.approx(part.mean(), rel=1e-9, abs=1e-12)
            assert e.ate_se == pytest.approx(part.std(ddof=1) / math.sqrt(len(part)), rel=1e-9)
