"""Rule-based touch attribution (first touch, last touch, linear, time decay), and the
path table and credit record that every attribution method shares.

Every method reads a `PathTable` (journeys aggregated by their ordered touches:
ChannelAttribution's exchange format, built by `path_table` or `read_paths`) and returns
a `Credits` record whose conversions add up to the table's total conversions. `markov`
and `shapley` live in their own modules and return the same record.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from upshot.errors import InputError, UpshotError, UsageError
from upshot.sql import ident

SEPARATOR = " > "
RULE_METHODS = ("first_touch", "last_touch", "linear")
_READERS = {".csv": "read_csv", ".tsv": "read_csv", ".txt": "read_csv", ".parquet": "read_parquet"}


@dataclass(frozen=True, slots=True)
class PathTable:
    """Journeys aggregated by path: row `i` is the ordered touches `paths[i]`.

    `conversions[i]`, `nulls[i]` and `values[i]` (float64, shape `(n,)`) are the number
    of journeys with that path that converted, that did not, and the summed conversion
    value of the converting ones. Build it with `path_table`, which validates.
    """

    paths: tuple[tuple[str, ...], ...]
    conversions: np.ndarray
    nulls: np.ndarray
    values: np.ndarray

    @property
    def channels(self) -> tuple[str, ...]:
        """Every channel that appears in any path, sorted."""
        return tuple(sorted({c for path in self.paths for c in path}))

    @property
    def total_conversions(self) -> float:
        return float(self.conversions.sum())

    @property
    def total_value(self) -> float:
        return float(self.values.sum())

    @property
    def total_nulls(self) -> float:
        return float(self.nulls.sum())


def path_table(
    paths: Sequence[Sequence[str] | str],
    conversions: Sequence[float] | np.ndarray,
    nulls: Sequence[float] | np.ndarray | None = None,
    values: Sequence[float] | np.ndarray | None = None,
) -> PathTable:
    """A validated `PathTable`; a path may be a list of touches or a `" > "`-joined string.

    Without `values`, each conversion is worth 1. Rows with the same path are merged.
    """
    n = len(paths)
    conv = _column(conversions, n, "total_conversions")
    null = np.zeros(n) if nulls is None else _column(nulls, n, "total_null")
    value = conv.copy() if values is None else _column(values, n, "total_conversion_value", True)
    merged: dict[tuple[str, ...], int] = {}
    keys: list[tuple[str, ...]] = []
    rows = []
    for i, raw in enumerate(paths):
        path = parse_path(raw) if isinstance(raw, str) else tuple(str(c).strip() for c in raw)
        if not path or any(c == "" for c in path):
            raise InputError(f"path row {i + 1}: {raw!r} has an empty touch")
        if path not in merged:
            merged[path] = len(keys)
            keys.append(path)
        rows.append(merged[path])
    index = np.asarray(rows, dtype=np.int64)
    size = len(keys)
    return PathTable(
        paths=tuple(keys),
        conversions=np.bincount(index, conv, size) if n else np.zeros(0),
        nulls=np.bincount(index, null, size) if n else np.zeros(0),
        values=np.bincount(index, value, size) if n else np.zeros(0),
    )


def parse_path(text: str) -> tuple[str, ...]:
    """`"push > email"` as `("push", "email")`."""
    return tuple(part.strip() for part in text.split(SEPARATOR.strip()))


def _column(values: Any, n: int, name: str, signed: bool = False) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.shape[0] != n:
        raise UsageError(f"{name} has {array.shape[0]} rows, must have {n} like path")
    bad = ~np.isfinite(array) if signed else ~(np.isfinite(array) & (array >= 0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        rule = "finite" if signed else "finite and >= 0"
        raise InputError(f"{name} row {row + 1} == {float(array[row])!r}, must be {rule}")
    return array


def read_paths(file: str | Path) -> PathTable:
    """A ChannelAttribution path table from CSV (any delimiter), Parquet or NDJSON.

    Columns (case-insensitive): `path` (touches joined by `" > "`), `total_conversions`,
    and optionally `total_null` and `total_conversion_value`.
    """
    import duckdb

    source = Path(file)
    if not source.is_file():
        raise UsageError(f"--paths {source}: no such file")
    reader = _READERS.get(source.suffix.lower(), "read_json_auto")
    con = duckdb.connect()
    try:
        try:
            names = [
                r[0]
                for r in con.execute(
                    f"DESCRIBE SELECT * FROM {reader}(?)", [str(source)]
                ).fetchall()
            ]
        except duckdb.Error as exc:
            raise InputError(f"{source}: unreadable ({str(exc).splitlines()[0]})") from None
        lower = {n.lower(): n for n in names}
        for required in ("path", "total_conversions"):
            if required not in lower:
                raise InputError(f"{source}: missing column {required!r} (has {', '.join(names)})")
        wanted = ("total_conversions", "total_null", "total_conversion_value")
        select = [f"CAST({ident(lower['path'])} AS VARCHAR)"]
        for name in wanted:
            column = ident(lower[name]) if name in lower else "NULL"
            select += [f"TRY_CAST({column} AS DOUBLE)", f"CAST({column} AS VARCHAR)"]
        rows = con.execute(f"SELECT {', '.join(select)} FROM {reader}(?)", [str(source)]).fetchall()
    finally:
        con.close()
    columns: dict[str, list[float]] = {name: [] for name in wanted}
    for number, row in enumerate(rows, start=1):
        if not row[0] or not row[0].strip():
            raise InputError(f"{source} row {number}: path is empty")
        for k, name in enumerate(wanted):
            parsed, raw = row[1 + 2 * k], row[2 + 2 * k]
            if parsed is None and (raw is not None or name == "total_conversions"):
                raise InputError(f"{source} row {number}: {name} == {raw!r}, must be a number")
            columns[name].append(0.0 if parsed is None else parsed)
    has_value = "total_conversion_value" in lower
    try:
        return path_table(
            [r[0] for r in rows],
            columns["total_conversions"],
            columns["total_null"],
            columns["total_conversion_value"] if has_value else None,
        )
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Credits:
    """One method's credit per channel: `conversions[j]` and `value[j]` go to `channels[j]`.

    Arrays are float64 of shape `(len(channels),)`; conversions add up to the path
    table's total conversions (NaN everywhere when the method cannot be estimated, with
    `status` saying why). `se` is a standard error per channel, zero for exact methods.
    `details` holds method-specific numbers (Markov removal effects, Shapley algorithm).
    """

    method: str
    channels: tuple[str, ...]
    conversions: np.ndarray
    value: np.ndarray
    se: np.ndarray
    status: str = "ok"
    details: dict[str, Any] = field(default_factory=dict)

    def share(self) -> np.ndarray:
        """Each channel's share of the credited conversions (NaN when nothing converted)."""
        total = float(np.nansum(self.conversions))
        if total <= 0 or not np.isfinite(self.conversions).all():
            return np.full(len(self.channels), math.nan)
        return self.conversions / total


def credits_from(
    method: str,
    channels: Sequence[str],
    conversions: np.ndarray,
    value: np.ndarray,
    *,
    se: np.ndarray | None = None,
    status: str = "ok",
    details: dict[str, Any] | None = None,
) -> Credits:
    return Credits(
        method=method,
        channels=tuple(channels),
        conversions=np.asarray(conversions, dtype=np.float64),
        value=np.asarray(value, dtype=np.float64),
        se=np.zeros(len(channels)) if se is None else np.asarray(se, dtype=np.float64),
        status=status,
        details=details or {},
    )


def align(credits: Credits, channels: Sequence[str]) -> Credits:
    """`credits` over exactly `channels` (a channel it never credited gets zero)."""
    position = {c: j for j, c in enumerate(credits.channels)}
    extra = set(credits.channels) - set(channels)
    if extra:
        raise UpshotError(f"{credits.method} credits {sorted(extra)[0]!r}, absent from the paths")

    def pick(values: np.ndarray) -> np.ndarray:
        return np.asarray([values[position[c]] if c in position else 0.0 for c in channels])

    return credits_from(
        credits.method,
        channels,
        pick(credits.conversions),
        pick(credits.value),
        se=pick(credits.se),
        status=credits.status,
        details=credits.details,
    )


def _position_credit(table: PathTable, method: str, pick: int) -> Credits:
    channels = table.channels
    index = {c: j for j, c in enumerate(channels)}
    target = np.asarray([index[p[pick]] for p in table.paths], dtype=np.int64)
    k = len(channels)
    return credits_from(
        method,
        channels,
        np.bincount(target, table.conversions, k) if len(target) else np.zeros(k),
        np.bincount(target, table.values, k) if len(target) else np.zeros(k),
    )


def first_touch(table: PathTable) -> Credits:
    """Each conversion to the first touch of its journey."""
    return _position_credit(table, "first_touch", 0)


def last_touch(table: PathTable) -> Credits:
    """Each conversion to the last touch before it."""
    return _position_credit(table, "last_touch", -1)


def linear(table: PathTable) -> Credits:
    """Each conversion split equally over all touches of its path, repeats counted."""
    channels = table.channels
    index = {c: j for j, c in enumerate(channels)}
    conv = np.zeros(len(channels))
    value = np.zeros(len(channels))
    for path, c, v in zip(table.paths, table.conversions, table.values, strict=True):
        if c == 0 and v == 0:
            continue
        step = 1.0 / len(path)
        for touch in path:
            conv[index[touch]] += c * step
            value[index[touch]] += v * step
    return credits_from("linear", channels, conv, value)


def decay_weight(age_days: float, half_life_days: float) -> float:
    """A touch's weight `age_days` before the conversion: halves every `half_life_days`."""
    return float(2.0 ** (-age_days / half_life_days))


def time_decay(
    journeys: Iterable[tuple[Sequence[str], Sequence[float], float, float]],
    half_life_days: float,
) -> Credits:
    """Time-decay credit from individual converting journeys (the reference for the SQL).

    Each journey is `(touches, ages_days, conversions, value)`: a touch `age` days before
    the conversion weighs `2 ** (-age / half_life_days)`, and the journey's conversions
    and value are split in proportion to those weights. The warehouse path computes the
    same aggregate inside DuckDB (`touches.sql`, `time-decay-credits`).
    """
    if not half_life_days > 0:
        raise UsageError(f"half_life == {half_life_days}, must be > 0")
    conv: dict[str, float] = {}
    value: dict[str, float] = {}
    for touches, ages, conversions, worth in journeys:
        # counted from the newest touch: same ratios, and no journey underflows to 0/0
        newest = min(ages)
        weights = [decay_weight(a - newest, half_life_days) for a in ages]
        total = sum(weights)
        for touch, weight in zip(touches, weights, strict=True):
            conv[touch] = conv.get(touch, 0.0) + conversions * weight / total
            value[touch] = value.get(touch, 0.0) + worth * weight / total
    channels = tuple(sorted(conv))
    return credits_from(
        "time_decay",
        channels,
        np.asarray([conv[c] for c in channels]),
        np.asarray([value[c] for c in channels]),
    )


def rule_credits(table: PathTable) -> list[Credits]:
    """First touch, last touch and linear, in that order."""
    return [first_touch(table), last_touch(table), linear(table)]
