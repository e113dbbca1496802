"""The flat hierarchy of domain errors, each mapped to a stable exit code.

| code | meaning |
|------|---------|
| 0    | ok |
| 1    | error (any `UpshotError` not listed below) |
| 2    | usage: bad options or arguments |
| 3    | data-quality gate: too many rows quarantined |
| 4    | database busy: another writer holds the lock |
| 5    | refused by a guardrail or validity check |
| 130  | interrupted |
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_DATA_QUALITY = 3
EXIT_BUSY = 4
EXIT_REFUSED = 5
EXIT_INTERRUPTED = 130


class UpshotError(Exception):
    """Base of every error upshot raises on purpose; its message is one line for users."""

    exit_code = EXIT_ERROR


class UsageError(UpshotError):
    """Options or arguments that cannot be right (a bad value, a missing file)."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """`upshot.toml` names an unknown key or holds a value of the wrong kind."""


class InputError(UpshotError):
    """An input file cannot be used at all (missing required column, unreadable)."""


class LoadIncompleteError(InputError):
    """Some files of a load could not be used; the others loaded.

    `report` carries every file's outcome (the failed ones with their reason).
    """

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report


class DataQualityError(UpshotError):
    """Good rows were kept, but the share of quarantined rows exceeded the gate.

    `report` carries what was loaded, so the caller can still print the summary.
    """

    exit_code = EXIT_DATA_QUALITY

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report


class DatabaseBusyError(UpshotError):
    """Another writer held the warehouse lock for longer than the timeout."""

    exit_code = EXIT_BUSY


class SchemaVersionError(UpshotError):
    """The warehouse was written by a newer upshot than this one."""


class RefusedError(UpshotError):
    """A guardrail or validity check refused the action (circuit breaker, SRM, tampering)."""

    exit_code = EXIT_REFUSED


class InterruptError(UpshotError):
    """Ctrl-C or SIGINT: whatever was committed stays, the rest rolls back."""

    exit_code = EXIT_INTERRUPTED
