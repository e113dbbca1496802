"""Ctrl-C however it surfaces, turned into one `InterruptError` (exit 130) naming the work.

The CLI's SIGINT handler raises `InterruptError` in Python code; inside a DuckDB query the
signal comes back as DuckDB's own error instead ("Query interrupted", a RuntimeError, or
`duckdb.InterruptException`). Library code that must not mistake it for bad input asks
`is_interrupt`; `interruptible(message)` re-raises any of them as one `InterruptError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from upshot.errors import InterruptError


def is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C, however it surfaces."""
    import duckdb

    return isinstance(exc, KeyboardInterrupt | InterruptError | duckdb.InterruptException) or (
        isinstance(exc, RuntimeError) and str(exc).startswith("Query interrupted")
    )


@contextlib.contextmanager
def interruptible(message: str) -> Iterator[None]:
    """Re-raise an interrupt of the enclosed work as `InterruptError(message)`."""
    try:
        yield
    except BaseException as exc:
        if not is_interrupt(exc):
            raise
        raise InterruptError(message) from None
