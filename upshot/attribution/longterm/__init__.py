"""Long-term value: the effect on a long-term outcome projected from short-term ones.

A map of the package, in the order a projection flows through it:

- `crossfit`   folds, the default learners (additive splines) and one cross-fitted nuisance
- `surrogate`  the surrogate index with the Chen & Ritzwoller (2023) influence function
               (`surrogate_index`, pure arithmetic on arrays), and its records
               `SurrogateEstimate`, `ShortTermEffect`
- `table`      two tables (history, experiment) checked and encoded for `surrogate_index`
- `backtest`   the surrogacy check: projected against realized long-term effects on past
               windows, per class; calibration slope, coverage, flagged classes
- `indicator`  `IndicatorSplines`: splines of continuous columns, 0/1 columns as they are
- `warehouse`  every class of a window projected from the warehouse's history, with the
               backtest status of each class (`upshot uplift`'s projected rows)
"""
