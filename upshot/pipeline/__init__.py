"""The weekly job (`upshot run`) and the demo (`upshot demo`).

- `job`     `run`: the stages in order for one ISO week, idempotent per week; exit codes
- `stages`  one adapter per stage (load, uplift, experiments, weights), each a `Stage`
- `stage_longterm`  the long-term projection and its backtest, after the uplift
- `demo`    simulate a world, then run every simulated week

Importing this package is cheap; the stages import their libraries when they run.
"""

from upshot.pipeline.job import FAIL_ON, JobResult, WeekResult, outcome, run, run_week
from upshot.pipeline.stages import Stage

__all__ = ["FAIL_ON", "JobResult", "Stage", "WeekResult", "outcome", "run", "run_week"]
