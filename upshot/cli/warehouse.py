"""`upshot init`, `upshot load`, `upshot status`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:  # noqa: ARG001
    return None
