"""`upshot uplift --backend ray` gives the local backend's estimates, as one JSON document."""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from tests.conftest import run_cli


def test_ray_backend_cli_matches_local(tmp_path):
    rng = np.random.default_rng(5)
    n = 3000
    activity = rng.normal(size=n)
    treatment = (rng.random(n) < 0.5).astype(int)
    pl.DataFrame(
        {
            "message_class": rng.choice(["a_push", "b_email"], n),
            "treatment": treatment,
            "activity": activity,
            "tenure_years": rng.exponential(2, n),
            "outcome": 0.3 * treatment + activity + rng.normal(size=n),
        }
    ).write_parquet(tmp_path / "t.parquet")
    args = [
        "uplift",
        "--table",
        str(tmp_path / "t.parquet"),
        "--class-col",
        "message_class",
        "--treatment-col",
        "treatment",
        "--outcome-col",
        "outcome",
        "--covariates",
        "activity,tenure_years",
        "--nuisance",
        "linear",
        "--no-refute",
        "--json",
    ]
    local = run_cli(*args)
    ray = run_cli(*args, "--backend", "ray")
    assert local.code == ray.code == 0, ray.err[-500:]
    documents = [json.loads(r.out) for r in (local, ray)]
    for document in documents:
        document.pop("run_id", None)
    assert documents[0]["estimates"] == documents[1]["estimates"]
    assert len(documents[0]["estimates"]) >= 2
