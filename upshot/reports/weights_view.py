"""The value weights of a week beside the previous week's, read from the weight files.

The files under the weights directory are the source of truth (checksums verified by
`upshot.read_weights`). The week's version is the one the weekly job published for it,
else the newest kept version whose estimates are of that week; the previous one is the
newest version of an earlier week.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from upshot.reports.tables import Records, fetch, num

if TYPE_CHECKING:
    import duckdb

_NUMBERS = ("weight", "previous_weight", "change", "value", "value_ci_lower", "value_ci_upper")


def _documents(directory: Path) -> list[dict[str, Any]]:
    """Every kept version's verified document, newest first; unreadable ones are skipped."""
    from upshot.attribution.weights.read import read, read_manifest
    from upshot.errors import UpshotError

    if not (directory / "manifest.json").exists():
        return []
    out = []
    for entry in reversed(read_manifest(directory)["versions"]):
        try:
            out.append(read(directory / f"{entry['weights_version']}.json"))
        except UpshotError:
            continue
    return out


def _week_of(document: dict[str, Any]) -> str | None:
    window = document.get("window") or {}
    return window.get("week")


def pick(
    documents: list[dict[str, Any]], week: str, pinned: str | None, previous_pinned: str | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The week's document and the previous week's (newest first in `documents`)."""
    by_version = {d["weights_version"]: d for d in documents}
    current = by_version.get(pinned) if pinned else None
    if current is None:
        current = next((d for d in documents if _week_of(d) == week), None)
    previous = by_version.get(previous_pinned) if previous_pinned else None
    if previous is None:
        previous = next(
            (d for d in documents if (_week_of(d) or "") < week and _week_of(d) is not None),
            None,
        )
    return current, previous


def compare(current: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per class of `current`: its weight, last week's, and the change."""
    before = {c["message_class"]: c for c in (previous or {}).get("classes", [])}
    rows = []
    for c in current["classes"]:
        old = before.get(c["message_class"])
        weight, was = num(c["weight"]), num(old["weight"]) if old else None
        rows.append(
            {
                "message_class": c["message_class"],
                "channel": c["channel"],
                "weight": weight,
                "previous_weight": was,
                "change": weight - was if weight is not None and was is not None else None,
                "value": num(c["value"]),
                "value_ci_lower": num(c["value_ci_lower"]),
                "value_ci_upper": num(c["value_ci_upper"]),
                "status": c["status"],
                "reason": c["reason"],
                "new": old is None and previous is not None,
            }
        )
    return rows


def weights_section(
    directory: Path,
    week: str,
    pinned: str | None,
    con: duckdb.DuckDBPyConnection,
    suppressed: set[str],
) -> tuple[Records, dict[str, Any]]:
    """Rows for the weights table and chart, and `info` (version, previous_version,
    status: ok | no_weights, and the publication's provenance)."""
    previous_pinned = next(iter(fetch(con, "previous-weights-version", week=week)), {}).get(
        "weights_version"
    )
    current, previous = pick(_documents(directory), week, pinned, previous_pinned)
    if current is None:
        return (), {"status": "no_weights", "version": None, "previous_version": None}
    rows = compare(current, previous)
    for row in rows:
        row["suppressed"] = row["message_class"] in suppressed
        if row["suppressed"]:
            row.update(dict.fromkeys(_NUMBERS))
    info = {
        "status": "ok",
        "version": current["weights_version"],
        "previous_version": previous["weights_version"] if previous else None,
        "directory": str(directory),
        "policy_version": current["policy"]["version"],
        "policy_hash": current["policy"]["hash"],
    }
    return tuple(rows), info
