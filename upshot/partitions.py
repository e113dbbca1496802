"""Hive partitions: the `key=value` folders of a path, and pruning files by them.

Logs land as `sends/date=2026-11-16/channel=push/part-0.parquet`. The folder names are
data: a writer that partitions by a column usually drops it from the files (pyarrow,
Spark), so `load` takes a contract column's value from its folder when the file lacks
it, and checks it when the file has it. They are also an index: `--since`, `--until`
and `--partition` choose files by their folders alone, before any file is opened or
listed in the warehouse, which is what keeps a daily load of a years-deep bucket cheap.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from upshot import contract
from upshot.errors import InputError, UsageError

DATE_KEYS = ("date", "dt", "day")  # the folder names --since / --until read, first found


def values(path: str) -> dict[str, str]:
    """The path's `key=value` folders, keys in contract spelling (`Channel=` is `channel`).

    Values are percent-decoded as hive writers encode them; an empty value or hive's
    `__HIVE_DEFAULT_PARTITION__` is a null. A key repeated deeper in the path wins.
    """
    found: dict[str, str] = {}
    for part in path.replace("\\", "/").split("/")[:-1]:
        key, sep, value = part.partition("=")
        name = contract.snake(unquote(key))
        if sep and name:
            found[name] = unquote(value)
    return found


def columns(path: str, names: set[str]) -> dict[str, str]:
    """The path's folders whose keys are among `names` (the table's contract columns)."""
    return {k: v for k, v in values(path).items() if k in names}


def keyed(digest: str, folders: dict[str, str]) -> str:
    """A file's content digest, made to differ when the folders that hold its data do."""
    if not folders:
        return digest
    text = digest + "".join(f"/{k}={v}" for k, v in sorted(folders.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def is_null(value: str) -> bool:
    return value in ("", "__HIVE_DEFAULT_PARTITION__")


@dataclass(frozen=True, slots=True)
class Pruning:
    """Which partitions to load: `keys[k]` lists the accepted values of folder `k`,
    `since` / `until` bound the date folder (inclusive). Empty: every file."""

    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    since: dt.date | None = None
    until: dt.date | None = None

    @classmethod
    def parse(
        cls, pairs: Sequence[str], since: dt.date | None = None, until: dt.date | None = None
    ) -> Pruning:
        """From `--partition key=value` options (repeat a key for several values)."""
        keys: dict[str, tuple[str, ...]] = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            name = contract.snake(key)
            if not sep or not name:
                raise UsageError(f"--partition {pair!r}: expected KEY=VALUE, e.g. channel=push")
            keys[name] = (*keys.get(name, ()), value)
        if since and until and since > until:
            raise UsageError(f"--since {since} is after --until {until}")
        return cls(keys, since, until)

    def __bool__(self) -> bool:
        return bool(self.keys) or self.since is not None or self.until is not None

    def select(self, files: Sequence[str]) -> tuple[list[str], int]:
        """The files whose folders pass every condition, and how many were pruned.

        A file without the folder a condition reads does not pass it. A condition whose
        folder no file has is a mistake (a misspelt key, the wrong root), not an empty
        week: it fails rather than loading nothing in silence.
        """
        if not self or not files:
            return list(files), 0
        parsed = [(f, values(f)) for f in files]
        for key in self.keys:
            if not any(key in v for _, v in parsed):
                raise UsageError(f"--partition {key}=...: no input file is under a {key}= folder")
        if (self.since or self.until) and not any(_date_key(v) for _, v in parsed):
            raise UsageError(
                f"--since/--until: no input file is under a {'=, '.join(DATE_KEYS)}= folder"
            )
        kept = [f for f, v in parsed if self._passes(f, v)]
        return kept, len(files) - len(kept)

    def _passes(self, path: str, folders: dict[str, str]) -> bool:
        for key, accepted in self.keys.items():
            if key not in folders or folders[key] not in accepted:
                return False
        if self.since or self.until:
            date_key = _date_key(folders)
            if date_key is None:
                return False
            day = _day(path, date_key, folders[date_key])
            if (self.since and day < self.since) or (self.until and day > self.until):
                return False
        return True


def _date_key(folders: dict[str, str]) -> str | None:
    return next((k for k in DATE_KEYS if k in folders), None)


def _day(path: str, key: str, value: str) -> dt.date:
    try:
        # `date=2026-11-16` or a timestamp-like `dt=2026-11-16T00` / `2026-11-16 00:00:00`
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise InputError(f"{path}: folder {key}={value!r} is not a date (YYYY-MM-DD)") from None
