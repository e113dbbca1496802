"""A/B analysis from sufficient statistics.

    from upshot.experiments import analyze, decide
    verdict = decide(analyze("send_time_test", db="upshot.duckdb"))

Map of the package:

- `stats`        `Moments`: counts, sums, cross-products; the SQL column naming rule
- `query`        the one-pass sufficient-statistics SQL, generated from metric definitions
- `sources`      running it on a user-level file or on the warehouse
- `complete`     the plain pass over a Parquet file whose footers show no NULL
- `spec`         metric definitions from `upshot.toml` or from flags
- `estimates`    per-arm estimates: means, ratios (`ratio`), CUPED / Lin (`cuped`)
- `effects`      one arm against control: Welch t, z, proportions, relative lift
- `srm`          sample ratio mismatch (chi-square against the intended split)
- `corrections`  Bonferroni, Holm, Benjamini-Hochberg
- `sequential`   always-valid confidence sequences (Waudby-Smith et al. 2023)
- `engine`       rows -> `ExperimentAnalysis`: arms, SRM, tests, statuses, corrections
- `results`      the result records and collection
- `decision`     the risk-aware ship / no-ship verdict (Schultzberg et al. 2024)
- `decompose`    funnel and mix/rate decompositions with delta-method CIs
- `interaction`  2x2 interaction tests between overlapping experiments
- `power`        users needed and detectable effects under the verdict's corrections
- `warehouse`    listing experiments, writing `experiment_results`
- `analysis`     the entry points `analyze` and `decompose`
"""

from __future__ import annotations

from upshot.experiments.analysis import Decomposition, analyze, decompose
from upshot.experiments.decision import Verdict, decide
from upshot.experiments.engine import Options
from upshot.experiments.power import Baseline, Plan, plan, plan_experiment
from upshot.experiments.results import EffectResult, ExperimentAnalysis
from upshot.experiments.warehouse import list_experiments, save

__all__ = [
    "Baseline",
    "Decomposition",
    "EffectResult",
    "ExperimentAnalysis",
    "Options",
    "Plan",
    "Verdict",
    "analyze",
    "decide",
    "decompose",
    "list_experiments",
    "plan",
    "plan_experiment",
    "save",
]
