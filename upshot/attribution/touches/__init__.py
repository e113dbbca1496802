"""Touch attribution: who gets credit for a conversion, beside what messaging caused.

A map of the package (imports run downwards only):

- `rules`      path tables (`path_table`, `read_paths`) and the rule-based credits
               (first touch, last touch, linear, time decay)
- `markov`     Markov-chain removal effects, solved exactly on the absorbing chain
- `shapley`    exact Shapley values over channels
- `causal`     the causal column: incremental conversions from the uplift run
- `attribute`  journeys from the warehouse or a path table → every method → `TouchAttribution`
- `persist`    `touch_credits` rows written and read back
"""
