"""Lin's HC2 variance: the second pass over the users, in SQL.

HC2 weighs each residual by 1 / (1 - leverage), and leverages are per unit, so sums and
cross-products cannot give it. Once the first pass has fixed each arm's means, slopes
and inverse scatter matrix (`cuped.LinArm`), one aggregate query per Lin-adjusted metric
computes, per arm, sum_i w_i^2 e_i^2 / (1 - h_ii) (see `cuped.hc2_sum`, the same formula
in numpy). Variables are read exactly as in the metric's complete case (`query.Case`),
so both passes see the same users and values. Constants are bound, never spliced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from upshot.experiments.cuped import LinArm
from upshot.experiments.estimates import Target
from upshot.experiments.query import Aggregates, case_expressions, case_filter, with_ctes
from upshot.sql import ident


def hc2_sql(
    source: str,
    keys: Sequence[str],
    agg: Aggregates,
    target: Target,
    arms: Mapping[str, LinArm],
    *,
    cased: bool,
) -> tuple[str, dict[str, Any]]:
    """The query returning (variant, hc2) for `target`'s arms, and its parameters.

    `cased`: the variables are read as in a complete case (a file, NULL is missing);
    otherwise as they are (the warehouse, where they are never NULL).
    """
    names = target.variables
    _, required = target.case
    if cased:
        expr = case_expressions(required, names, "b.")
        where = case_filter(required, "b.")
    else:
        expr = {v: "b." + ident(v) for v in names}
        where = "true"
    ctes, body, params = with_ctes(source, keys, agg)
    k = len(names)
    rows = []
    for a, (label, arm) in enumerate(arms.items()):
        p = len(arm.cov_idx)
        values: dict[str, float] = {"n": float(arm.n)}
        values |= {f"m{j}": float(arm.mean[j]) for j in range(k)}
        values |= {f"g{j}": float(arm.grad[j]) for j in range(k)}
        values |= {f"t{h}": float(arm.theta[h]) for h in range(p)}
        values |= {f"a{h}": float(arm.toward[h]) for h in range(p)}
        values |= {f"s{h}_{i}": float(arm.s_inv[h, i]) for h in range(p) for i in range(p)}
        params[f"arm{a}"] = label
        for name, value in values.items():
            params[f"c{a}_{name}"] = value if np.isfinite(value) else None
        rows.append(
            f"($arm{a}::VARCHAR, " + ", ".join(f"$c{a}_{name}::DOUBLE" for name in values) + ")"
        )
    p = len(target.adjusters)
    columns = ["variant", "n", *(f"{c}{j}" for c in "mg" for j in range(k))]
    columns += [f"t{h}" for h in range(p)] + [f"a{h}" for h in range(p)]
    columns += [f"s{h}_{i}" for h in range(p) for i in range(p)]
    ctes.append(f"k ({', '.join(columns)}) AS (VALUES {', '.join(rows)})")
    centred = [f"({expr[v]} - k.m{j})" for j, v in enumerate(names)]
    cov_idx = [names.index(c) for c in target.adjusters]
    d = [centred[j] for j in cov_idx]
    e = " + ".join(f"k.g{j} * {centred[j]}" for j in range(k))
    e += "".join(f" - k.t{h} * {d[h]}" for h in range(p))
    lev = "1.0 / k.n" + "".join(
        f" + k.s{h}_{i} * {d[h]} * {d[i]}" for h in range(p) for i in range(p)
    )
    weight = "1.0 / k.n" + "".join(f" + k.a{h} * {d[h]}" for h in range(p))
    excluded = " AND b.exclusion = ''" if "exclusion" in keys else ""
    sql = (
        f"WITH {', '.join(ctes)}\n"
        f"SELECT variant, sum(w * w * e * e / (1.0 - h)) AS hc2 FROM (\n"
        f"  SELECT b.variant, ({e}) AS e, ({lev}) AS h, ({weight}) AS w\n"
        f"  FROM {body} b JOIN k ON b.variant = k.variant\n"
        f"  WHERE {where}{excluded}\n"
        f") GROUP BY variant"
    )
    return sql, params
