"""Result collections: implement `to_dicts()` once, get every other view from the mixin.

Field names carry meaning the display relies on: a field named `rel_*` prints as a
percentage, `pvalue*` with four decimals, `n_*` as an integer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl


def format_value(name: str, value: Any) -> str:
    """How one field prints in tables, Markdown and HTML."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):  # never "inf%": an infinite ratio has no percentage
            return "inf" if value > 0 else "-inf"
        if name.startswith("rel_"):
            return f"{value:.2%}"
        if name.startswith("pvalue") or name == "p_adj":  # `p_adj`: a compact table's p-value
            return f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}"
        return significant(value)
    return str(value)


def significant(value: float, digits: int = 4) -> str:
    """`value` with `digits` significant digits and no exponent from 1e-4 up: a count of
    460,000 prints as 460000, never 4.6e+05; only tiny values keep an exponent."""
    size = abs(value)
    if size >= 10 ** (digits - 1):
        return f"{value:.0f}"
    if size == 0 or size >= 1e-4:
        return f"{value:.{digits}g}"
    return f"{value:.{digits - 1}e}"


def jsonable(value: Any) -> Any:
    """A value JSON can hold: NaN and infinities become null, dates ISO strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return jsonable(value.item())
    return value


def dumps(document: Any) -> str:
    """Exactly one JSON document, strict (no NaN), stable key order."""
    return json.dumps(jsonable(document), allow_nan=False, default=str)


class ResultsMixin:
    """Views derived from `to_dicts()`; subclasses implement only that."""

    def to_dicts(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def to_polars(self) -> pl.DataFrame:
        import polars as pl

        return pl.DataFrame(self.to_dicts(), infer_schema_length=None)

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.to_dicts())

    def _rows(self) -> tuple[list[str], list[list[str]]]:
        dicts = self.to_dicts()
        names = list(dicts[0]) if dicts else []
        return names, [[format_value(k, d.get(k)) for k in names] for d in dicts]

    def to_string(self) -> str:
        names, rows = self._rows()
        widths = [max([len(n), *(len(r[i]) for r in rows)]) for i, n in enumerate(names)]
        lines = ["  ".join(n.rjust(w) for n, w in zip(names, widths, strict=True))]
        lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        names, rows = self._rows()
        lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        names, rows = self._rows()
        head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __str__(self) -> str:
        return self.to_string()


class Rows(ResultsMixin):
    """A plain list of dicts with the mixin's views (status tables, load summaries)."""

    __slots__ = ("_dicts",)

    def __init__(self, dicts: Sequence[dict[str, Any]]) -> None:
        self._dicts = list(dicts)

    def to_dicts(self) -> list[dict[str, Any]]:
        return list(self._dicts)
