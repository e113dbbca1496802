"""EconML's `use_ray` cross-fitting: one class on a Ray cluster with idle CPUs fits its
folds as nested Ray tasks, and every number equals the local backend's, bit for bit."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import polars as pl
import pytest

pytest.importorskip("ray")

from upshot.attribution.uplift.estimate import estimate_uplift
from upshot.attribution.uplift.ray_backend import ray_session
from upshot.config import Uplift
from upshot.results import dumps

sys.path.insert(0, str(Path(__file__).parent))
from uplift_world import BINARY, OBJECTIVES, make_decisions

# only the forest still fits folds inside EconML (the nuisances are fitted once per class)
SETTINGS = Uplift(
    estimator="causal_forest", nuisance="linear", seed=5, segments=("country",),
    min_segment_size=100,
)  # fmt: skip


def _estimate(frame, settings):
    return estimate_uplift(
        frame, outcomes=list(OBJECTIVES), binary=list(BINARY), settings=settings, refute=False
    )


def test_one_class_with_idle_cpus_crossfits_on_ray_with_identical_results():
    frame, _ = make_decisions(800, seed=2)
    one = frame.filter(pl.col("message_class") == "promo_push")
    local = _estimate(one, SETTINGS)
    assert local.classes["promo_push"]["crossfit"] == "local"
    # two CPUs and --jobs 2 (one CPU per class task): one CPU is idle for the fold tasks
    with ray_session(num_cpus=2):
        on_ray = _estimate(one, dataclasses.replace(SETTINGS, backend="ray", jobs=2))
    assert on_ray.classes["promo_push"]["crossfit"] == "ray"
    assert [e.status for e in on_ray.estimates if e.segment == "all"] == ["ok"] * len(OBJECTIVES)
    assert dumps(on_ray.documents()) == dumps(local.documents())
    assert dumps(on_ray.covariance_dicts()) == dumps(local.covariance_dicts())
