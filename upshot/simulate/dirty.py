"""Dirty mode: the clean sends and outcomes as raw text rows with realistic faults.

Internal to `upshot.simulate`. Sends become CSV text and outcomes NDJSON lines. Every
fault is either an extra row (a malformed copy with a fresh id, or an exact duplicate)
or a different spelling of the same value (a naive or +05:30 timestamp, an event filed
in the next day's partition), so a correct `upshot load` gives back the clean world and
its truth still holds. The counts go to `truth["dirty"]`:

    {"sends" | "outcomes": {"rows_written", "clean_rows", "duplicates", "malformed": {kind: n},
                            "expected_quarantine": {reason: n}, ...}}

with `naive_timestamps` / `offset_timestamps` (clean sends rows written without an
offset / with +05:30) and `late_events` (clean outcome rows filed under the next day).
`expected_quarantine` names the reasons `upshot.contract` gives each fault kind.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

DUPLICATE_SHARE = 0.01
# all kinds together; per file well under the default 1% reject gate of `upshot load`
MALFORMED_SHARE = 0.002
NAIVE_SHARE = OFFSET_SHARE = 0.03
LATE_SHARE = 0.5  # of the events in a day's last LATE_MINUTES
LATE_MINUTES = 15
ISO = "%Y-%m-%dT%H:%M:%S%.3fZ"

SEND_FAULTS = {  # kind: (column, raw value, quarantine reason)
    "bad_channel": ("channel", "telegram", "unknown_channel"),
    "propensity_zero": ("propensity", "0", "propensity_out_of_range"),
    "propensity_above_one": ("propensity", "1.5", "propensity_out_of_range"),
    "propensity_not_a_number": ("propensity", "abc", "bad_number"),
    "null_user_id": ("user_id", None, "null_required"),
    "bad_decided_at": ("decided_at", "not-a-date", "bad_timestamp"),
    "bad_treated": ("treated", "maybe", "bad_boolean"),
}
OUTCOME_FAULTS = {
    "value_inf": ("value", '"inf"', "value_not_finite"),
    "value_nan": ("value", '"NaN"', "value_not_finite"),
    "null_user_id": ("user_id", None, "null_required"),
    "bad_occurred_at": ("occurred_at", "not-a-date", "bad_timestamp"),
}


def _split(total: int, kinds: int) -> list[int]:
    return [total // kinds + (i < total % kinds) for i in range(kinds)]


def _malformed(
    rng: np.random.Generator,
    text: pl.DataFrame,
    faults: dict[str, tuple[str, str | None, str]],
    key: str,
) -> tuple[pl.DataFrame, np.ndarray, dict[str, int]]:
    """Copies of random rows, each with one fault and a fresh `key` (so it dedupes alone).

    Returns the rows, the index of the row each was copied from, and counts per kind.
    """
    n = text.height
    total = max(len(faults), round(MALFORMED_SHARE * n)) if n else 0
    counts = dict(zip(faults, _split(total, len(faults)), strict=True))
    kind = np.repeat(np.arange(len(faults)), list(counts.values()))
    source = rng.choice(n, total) if total else np.zeros(0, np.int64)
    bad = text[source.tolist()]
    bad = bad.with_columns(
        pl.Series("_kind", kind, dtype=pl.Int64),
        (pl.col(key) + "-bad" + pl.int_range(pl.len()).cast(pl.String)).alias(key),
    )
    for code, (column, raw, _) in enumerate(faults.values()):
        value = pl.lit(raw, dtype=pl.String)
        bad = bad.with_columns(
            pl.when(pl.col("_kind") == code).then(value).otherwise(pl.col(column)).alias(column)
        )
    return bad.drop("_kind"), source, counts


def _with_extras(
    rng: np.random.Generator, text: pl.DataFrame, bad: pl.DataFrame, source: np.ndarray
) -> tuple[pl.DataFrame, int]:
    """Clean rows in order, plus malformed rows and exact duplicates near their originals."""
    n = text.height
    n_dup = round(DUPLICATE_SHARE * n)
    picked = rng.choice(n, n_dup, replace=False) if n_dup else np.zeros(0, np.int64)
    dup = text[picked.tolist()]
    near = np.concatenate([source, picked]) + rng.uniform(-100.0, 100.0, len(source) + n_dup)
    order = np.concatenate([np.arange(n), near])
    rows = pl.concat([text, bad, dup]).with_columns(pl.Series("_order", order))
    return rows.sort(["partition", "_order"]).drop("_order"), n_dup


def _report(
    rows: int, clean: int, dups: int, counts: dict[str, int], faults: dict[str, Any]
) -> dict[str, Any]:
    reasons: dict[str, int] = {}
    for kind, n in counts.items():
        reasons[faults[kind][2]] = reasons.get(faults[kind][2], 0) + n
    return {
        "rows_written": rows,
        "clean_rows": clean,
        "duplicates": dups,
        "malformed": counts,
        "expected_quarantine": reasons,
    }


def dirty_sends(
    rng: np.random.Generator, sends: pl.DataFrame
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """CSV-ready text rows (all strings, `partition` = UTC day) and the fault counts."""
    n = sends.height
    draw = rng.random(n)
    naive = pl.Series(draw < NAIVE_SHARE)
    offset = pl.Series((draw >= NAIVE_SHARE) & (draw < NAIVE_SHARE + OFFSET_SHARE))
    at = pl.col("decided_at")
    shifted = at.dt.replace_time_zone(None) + pl.duration(hours=5, minutes=30)
    text = sends.select(
        "send_id",
        "user_id",
        "message_class",
        "channel",
        pl.when(pl.lit(naive))
        .then(at.dt.strftime("%Y-%m-%d %H:%M:%S%.3f"))
        .when(pl.lit(offset))
        .then(shifted.dt.strftime("%Y-%m-%dT%H:%M:%S%.3f+05:30"))
        .otherwise(at.dt.strftime(ISO))
        .alias("decided_at"),
        pl.col("treated").cast(pl.String),
        pl.col("propensity").cast(pl.String),
        pl.col("randomized").cast(pl.String),
        "campaign_id",
        "experiment_id",
        "variant",
        at.dt.date().cast(pl.String).alias("partition"),
    )
    bad, source, counts = _malformed(rng, text, SEND_FAULTS, "send_id")
    rows, n_dup = _with_extras(rng, text, bad, source)
    report = _report(rows.height, n, n_dup, counts, SEND_FAULTS)
    report["naive_timestamps"] = int(naive.sum())
    report["offset_timestamps"] = int(offset.sum())
    return rows, report


def _quoted(column: str) -> pl.Expr:
    return (
        pl.when(pl.col(column).is_null())
        .then(pl.lit("null"))
        .otherwise(pl.concat_str([pl.lit('"'), pl.col(column), pl.lit('"')]))
    )


def dirty_outcomes(
    rng: np.random.Generator, outcomes: pl.DataFrame
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """NDJSON lines (column `line`, with `partition`) and the fault counts."""
    at = pl.col("occurred_at")
    draw = pl.Series(rng.random(outcomes.height) < LATE_SHARE)
    minute = at.dt.hour().cast(pl.Int32) * 60 + at.dt.minute().cast(pl.Int32)
    late = pl.lit(draw) & (minute >= 24 * 60 - LATE_MINUTES)
    text = outcomes.select(
        "user_id",
        at.dt.strftime(ISO).alias("occurred_at"),
        "event",
        pl.col("value").cast(pl.String),
        "event_id",
        "send_id",
        pl.when(late)
        .then(at.dt.date() + pl.duration(days=1))
        .otherwise(at.dt.date())
        .cast(pl.String)
        .alias("partition"),
        late.alias("_late"),
    )
    n_late = int(text.get_column("_late").sum())
    text = text.drop("_late")
    bad, source, counts = _malformed(rng, text, OUTCOME_FAULTS, "event_id")
    rows, n_dup = _with_extras(rng, text, bad, source)
    fields = ("user_id", "occurred_at", "event", "value", "event_id", "send_id")
    parts: list[pl.Expr] = []
    for i, name in enumerate(fields):
        parts.append(pl.lit(("{" if i == 0 else ",") + f'"{name}":'))
        parts.append(pl.col(name) if name == "value" else _quoted(name))
    parts.append(pl.lit("}"))
    lines = rows.select(pl.concat_str(parts).alias("line"), "partition")
    report = _report(lines.height, outcomes.height, n_dup, counts, OUTCOME_FAULTS)
    report["late_events"] = n_late
    return lines, report


def add_faults(
    rng: np.random.Generator, sends: pl.DataFrame, outcomes: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    raw_sends, send_report = dirty_sends(rng, sends)
    raw_outcomes, outcome_report = dirty_outcomes(rng, outcomes)
    return raw_sends, raw_outcomes, {"sends": send_report, "outcomes": outcome_report}
