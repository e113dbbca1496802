"""Uplift: the causal effect of sending each message class on each objective.

A map of the package, in the order one class's estimate flows through it:

- `frames`          per-decision frames built in DuckDB (`decision_frame`), covariate encoding
- `estimate`        frame → per-class tasks → estimates (`estimate_uplift`), warehouse I/O
- `classtask`       what one class's fit receives (plain arrays, whole-class counts) and
                    returns (`ClassOutcome`)
- `worker`          `fit_task`, the entry a worker runs, without the fitting code in the driver
- `sampling`        seeded stratified row caps and capped cross-fitting folds
- `backend`         where per-class fits run (`map_fits`: in process or local workers)
- `ray_backend`     the same fits as Ray tasks
- `budget`          one task under a memory budget in a worker process, and how it failed
- `classfit`        one class: guards, shared propensity and folds, objectives, covariance
- `econml_adapter`  propensity design, folds, one objective's doubly robust scores and fit
- `propensity`      the estimated propensity: LightGBM from a logistic start, stopped early
- `nuisances`       per-arm outcome models of a class, and the known nuisances given to EconML
- `refute`          placebo, random common cause and subset refuters re-running our estimator
- `evaluate`        held-out Qini, AUUC and calibration of CATE models
- `sensitivity`     bounds under unobserved confounding (omitted-variable bias)
- `att`             the effect on the treated from the doubly robust scores
- `results`         the records: `UpliftEstimate`, `UpliftCovariance`, `UpliftResults`

The public names are re-exported by `upshot.attribution`.
"""
