"""What `upshot load` reports: per file and for the whole command."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from upshot.results import ResultsMixin


@dataclass(frozen=True, slots=True)
class FileReport:
    """What happened to one input file; counts are rows."""

    source: str
    table: str
    status: str  # loaded | already_loaded | failed
    rows_read: int = 0
    rows_accepted: int = 0
    duplicates_skipped: int = 0
    rows_quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    ignored_columns: tuple[str, ...] = ()
    fingerprint: str = ""
    error: str = ""  # why a failed file loaded nothing
    rows_replaced: int = 0  # users --replace: rows of users already there, overwritten
    naive_timestamps: int = 0  # timestamps without a zone, read in load.naive_timezone

    @property
    def reject_rate(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0


@dataclass(frozen=True, slots=True)
class LoadReport(ResultsMixin):
    """Every file of one `upshot load`, plus the reject gate that applied to them."""

    table: str
    files: tuple[FileReport, ...]
    max_reject_rate: float
    pruned: int = 0  # files left out by --since / --until / --partition, never opened

    def to_dicts(self) -> list[dict[str, Any]]:
        failed = bool(self.failed)  # the error column shows only when there is one
        return [
            {
                "source": f.source,
                "status": f.status,
                "rows_read": f.rows_read,
                "rows_accepted": f.rows_accepted,
                "duplicates_skipped": f.duplicates_skipped,
                "rows_quarantined": f.rows_quarantined,
                "rel_rejected": f.reject_rate,
                **({"error": f.error or None} if failed else {}),
            }
            for f in self.files
        ]

    @property
    def failed(self) -> tuple[FileReport, ...]:
        return tuple(f for f in self.files if f.status == "failed")

    @property
    def reasons(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for f in self.files:
            for reason, count in f.reasons.items():
                total[reason] = total.get(reason, 0) + count
        return dict(sorted(total.items()))

    @property
    def over_gate(self) -> tuple[FileReport, ...]:
        return tuple(f for f in self.files if f.reject_rate > self.max_reject_rate)

    def document(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "files": [
                {
                    **d,
                    "rows_replaced": f.rows_replaced,
                    "naive_timestamps": f.naive_timestamps,
                    "reasons": f.reasons,
                    "ignored_columns": list(f.ignored_columns),
                    "error": f.error or None,
                }
                for d, f in zip(self.to_dicts(), self.files, strict=True)
            ],
            "totals": {
                "files": len(self.files),
                "files_pruned": self.pruned,
                "files_failed": len(self.failed),
                "rows_accepted": sum(f.rows_accepted for f in self.files),
                "duplicates_skipped": sum(f.duplicates_skipped for f in self.files),
                "rows_quarantined": sum(f.rows_quarantined for f in self.files),
                "quarantined_by_reason": self.reasons,
            },
            "max_reject_rate": self.max_reject_rate,
            "gate_exceeded": [f.source for f in self.over_gate],
        }
