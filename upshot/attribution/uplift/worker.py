"""The entry a worker runs for a class, without the fitting code in the driver.

`estimate_uplift` hands `fit_task` (and `task_failed`) to `backend.map_fits`: pickled by
reference, so a driver whose fits run in worker processes never imports `classfit` and
what it loads (scikit-learn, LightGBM, SciPy: seconds of CPU per process). The workers
import `FIT_MODULES` as they start, while the driver is still building the first tasks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from upshot.attribution.uplift.classtask import ClassOutcome, ClassTask

FIT_MODULES = ("upshot.attribution.uplift.classfit",)


def fit_task(task: ClassTask) -> ClassOutcome:
    """`classfit.fit_class(task)`, importing the fitting code where the fit runs."""
    from upshot.attribution.uplift.classfit import fit_class

    return fit_class(task)


def task_failed(task: ClassTask, status: str) -> ClassOutcome:
    """`classfit.class_failed`: the outcome of a class whose fit could not run at all."""
    from upshot.attribution.uplift.classfit import class_failed

    return class_failed(task, status)
