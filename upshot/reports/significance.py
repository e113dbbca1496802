"""One decision per row of what the report calls significant, from one correction family.

Every test the report makes about a week goes into one family, corrected together by
`report.correction` at `uplift.alpha`:

- each class x objective: H0 "uplift = 0" (two-sided);
- each class on the opt-out objective: H0 "opt-out uplift <= governance.max_optout_harm"
  (one-sided), the guardrail test;
- each objective's headline total (Σ uplift x sends over classes): H0 "total = 0".

`decide` writes the result into the rows (`pvalue_adj`, `significant` -1/0/1 and, on
opt-out rows, `guardrail_pvalue_adj`, `over_guardrail`); the headline cards, the chart
colours, the summary and the alerts only read those fields, so they cannot disagree.
A row without a p-value (suppressed, failed) stays out of the family and is never
significant.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


def two_sided(effect: float | None, se: float | None) -> float | None:
    """The normal two-sided p-value of `effect` / `se`, None when it cannot be computed."""
    if effect is None or se is None or not se > 0:
        return None
    return math.erfc(abs(effect / se) / math.sqrt(2))


def over(effect: float | None, se: float | None, guardrail: float) -> float | None:
    """The one-sided p-value of H0 "effect <= guardrail"."""
    if effect is None or se is None or not se > 0:
        return None
    return 0.5 * math.erfc((effect - guardrail) / se / math.sqrt(2))


def _sign(effect: float | None) -> int:
    return 0 if effect is None else 1 if effect > 0 else -1 if effect < 0 else 0


def decide(
    rows: Iterable[dict[str, Any]],
    headlines: Iterable[dict[str, Any]],
    *,
    alpha: float,
    method: str,
    optout_objective: str,
    guardrail: float,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(uplift rows, headline rows) as new dicts with the family's decisions, per week.

    Uplift rows need `week`, `objective`, `effect` and `pvalue` (and `effect_se` for the
    guardrail test); headline rows `effect` and `effect_se`, and `week` when more than
    one week is decided at once (else they belong to every week's family: pass only
    the week's own).
    """
    from upshot.experiments.corrections import adjust

    out = [dict(r) for r in rows]
    heads = [dict(h) for h in headlines]
    for week in sorted({r["week"] for r in out} | {h["week"] for h in heads if "week" in h}):
        mine = [r for r in out if r["week"] == week]
        totals = [h for h in heads if h.get("week", week) == week]
        guarded = [r for r in mine if r["objective"] == optout_objective]
        tests: list[float | None] = [r.get("pvalue") for r in mine]
        tests += [over(r.get("effect"), r.get("effect_se"), guardrail) for r in guarded]
        for h in totals:
            h["pvalue"] = two_sided(h.get("effect"), h.get("effect_se"))
        tests += [h["pvalue"] for h in totals]
        raw = [math.nan if p is None else p for p in tests]
        adjusted = [None if math.isnan(p) else float(p) for p in adjust(raw, method)]
        for r, p in zip(mine, adjusted[: len(mine)], strict=True):
            r["pvalue_adj"] = p
            r["significant"] = _sign(r.get("effect")) if p is not None and p < alpha else 0
        rest = adjusted[len(mine) :]
        for r, p in zip(guarded, rest[: len(guarded)], strict=True):
            r["guardrail_pvalue_adj"] = p
            r["over_guardrail"] = p is not None and p < alpha
        for h, p in zip(totals, rest[len(guarded) :], strict=True):
            h["pvalue_adj"] = p
            h["significant"] = _sign(h.get("effect")) if p is not None and p < alpha else 0
    return out, heads


def experiment_rows(rows: Iterable[dict[str, Any]], alpha: float) -> list[dict[str, Any]]:
    """Experiment result rows with `significant` (-1, 0, 1): the sign of the effect when
    the p-value adjusted by the analysis's own correction (`pvalue_adj`, across its
    metrics and arms) is under `experiments.alpha`. The chart colours and the summary
    read it, the table shows the same `pvalue_adj`."""
    out = []
    for r in rows:
        new = dict(r)
        if "metric" in r:
            p = r.get("pvalue_adj")
            ok = p is not None and p == p and p < alpha  # p == p: not NaN
            new["significant"] = _sign(r.get("effect")) if ok else 0
        out.append(new)
    return out
