"""`upshot report`: not built yet (see the issue that owns it)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:  # noqa: ARG001 - filled in by its issue
    return None
