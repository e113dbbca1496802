"""One finding of `upshot check`, shared by the warehouse checks (`upshot.check`) and the
lake's contract counts (`upshot.lake_check`), which `upshot.check` runs first."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Finding:
    """One check: `name`, `status` (ok | warning | error), a one-line `detail` that says what
    to change, and `facts`: the numbers and examples behind it (merged into the JSON)."""

    name: str
    status: str
    detail: str
    facts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, **self.facts}
