"""Reconciling the warehouse with what `latest.json` serves, after a killed export.

An export publishes its files first and journals the run and the version in the warehouse
after, so a kill between the two leaves a version served that `weight_versions` and
`runs` do not know. Every export starts by recording such a version from its verified
files and manifest entry, as a run with status `reconciled`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from upshot import store
from upshot.attribution.weights.read import manifest_entry, read, read_latest, read_manifest
from upshot.errors import RefusedError
from upshot.sql import query

if TYPE_CHECKING:
    from upshot.config import Config


def reconcile(config: Config, db_path: str, folder: Path) -> str | None:
    """Record the version `latest.json` serves when the warehouse lacks it; its name, or
    None when there was nothing to record (or nothing verifiable to record it from)."""
    from upshot.results import dumps

    try:
        latest = read_latest(folder)
        if latest is None:
            return None
        document = read(folder)
        entry = manifest_entry(read_manifest(folder), str(latest["weights_version"])) or {}
    except RefusedError:
        return None  # unverifiable weights are the export's to refuse, not to record
    version, sha = str(document["weights_version"]), str(latest["sha256"])
    known = {"weights_version": version, "sha256": sha}
    with store.writing(config, db_path, "weights export") as con, store.transaction(con):
        row = con.execute(query("weights", "weight-version-recorded"), known).fetchone()
        if row and row[0]:
            return None
        publication: dict[str, Any] = entry.get("publication") or {}
        provenance: dict[str, Any] = entry.get("provenance") or {}
        run = store.start_run(con, "weights export", config)
        classes = document.get("classes", [])
        con.execute(
            query("weights", "insert-weight-version"),
            {
                **known,
                "directory": str(folder),
                "run_id": run,
                "uplift_run_id": str(provenance.get("uplift_run_id") or ""),
                "previous_version": publication.get("previous_version"),
                "share_moved": publication.get("share_moved"),
                "breaker_tripped": bool(publication.get("tripped")),
                "forced": bool(publication.get("forced")),
                "n_classes": len(classes),
                "n_positive": sum(1 for c in classes if (c.get("weight") or 0) > 0),
                "details": dumps({"reconciled": True, "publication": publication}),
            },
        )
        details = {"weights_version": version, "reason": "published by an export killed before "
                   "it journaled; recorded from its verified files"}  # fmt: skip
        store.finish_run(con, run, "reconciled", details)
    return version
