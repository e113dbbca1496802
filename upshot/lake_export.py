"""`upshot lake export`: a warehouse's contract tables written in the lake layout.

sends and outcomes are hive-partitioned by the ISO week (UTC) of their timestamp
(`sends/week=2026-W43/data_0.parquet`), users and assignments are one file each: the
layout `upshot --lake` reads (see upshot.lake), so a loaded warehouse and the lake made
from it can be compared, and a warehouse can seed a lake.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from upshot import lake
from upshot.errors import UsageError
from upshot.sql import ident, literal

if TYPE_CHECKING:
    from upshot.config import Config

# the timestamp whose ISO week partitions a table; the others are written as one file
PARTITIONED = {"sends": "decided_at", "outcomes": "occurred_at"}


@dataclass(frozen=True, slots=True)
class Exported:
    """What `export` wrote: rows and files per table, under `path`."""

    path: str
    rows: dict[str, int]
    files: dict[str, int]

    def to_dicts(self) -> list[dict[str, Any]]:
        return [
            {"table": t, "rows": self.rows[t], "files": self.files[t], "path": f"{self.path}/{t}"}
            for t in self.rows
        ]


def export(config: Config, db_path: str, out: str, *, overwrite: bool = False) -> Exported:
    """Write the contract tables of the warehouse at `db_path` under `out` (without the
    warehouse's `load_id`). UsageError when a table's folder already holds files, unless
    `overwrite`, which replaces them."""
    from upshot.store import reading

    root = Path(out)
    if config.lake.path and root.resolve() == Path(config.lake.path).resolve():
        raise UsageError(f"{out}: is the lake being read (--lake); export to another folder")
    for table in lake.TABLES:
        if not overwrite and lake.files(str(root / table)):
            raise UsageError(
                f"{root / table}: already holds Parquet files; give --overwrite to replace them"
            )
    rows: dict[str, int] = {}
    files: dict[str, int] = {}
    with reading(config, db_path) as con:
        for table in lake.TABLES:
            target = root / table
            if overwrite and target.exists():
                _clear(target)
            target.mkdir(parents=True, exist_ok=True)
            column = PARTITIONED.get(table)
            if column:
                week = f"strftime({ident(column)}, '%G-W%V') AS week"
                body = f"SELECT * EXCLUDE (load_id), {week} FROM {ident(table)}"
                options = "FORMAT parquet, PARTITION_BY (week), OVERWRITE_OR_IGNORE true"
                dest = literal(str(target))
            else:
                body = f"SELECT * EXCLUDE (load_id) FROM {ident(table)}"
                options = "FORMAT parquet"
                dest = literal(str(target / f"{table}.parquet"))
            count = con.execute(f"SELECT count(*) FROM {ident(table)}").fetchone()
            rows[table] = int(count[0]) if count else 0
            con.execute(f"COPY ({body}) TO {dest} ({options})")
            files[table] = len(lake.files(str(target)))
    return Exported(str(root), rows, files)


def _clear(folder: Path) -> None:
    """Remove the Parquet files (and then empty folders) of a table folder: only what a
    previous export could have written."""
    for name in lake.files(str(folder)):
        Path(name).unlink()
    for sub in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if sub.is_dir() and not any(sub.iterdir()):
            sub.rmdir()
