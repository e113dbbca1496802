"""Engines: where the population-wide SQL passes run.

- `transpile` DuckDB SQL (upshot/sql/*.sql, the one definition) written for another
              dialect with SQLGlot; every fix-up in one place
- `duckdb`    the embedded default: a DuckDB connection, statements as written
- `spark`     Spark (local, standalone `spark://`, or Spark Connect `sc://`): statements
              transpiled, tables read from files in place; the session starts on first use
- `spark_lake` lake mode on Spark: the lake's tables through `[load.columns]` and `load`'s
              checks, the views DuckDB's lake mode makes (`upshot.lake`), or a refusal

An engine runs one named statement and returns only aggregates or capped samples to this
process (`fetch`: rows as dicts; `frame`: a polars frame). `open_engine` picks one from
`[engine]` in upshot.toml or the global `--engine` flag. Importing this package imports
neither pyspark nor SQLGlot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from upshot.errors import UsageError

if TYPE_CHECKING:
    import polars as pl

    from upshot.config import Config

KINDS = ("duckdb", "spark")


class Engine(Protocol):
    """What the passes need of an engine."""

    kind: str

    def fetch(
        self, sql: str, params: Mapping[str, Any], where: str, *, name: str = ""
    ) -> list[dict[str, Any]]:
        """Run DuckDB `sql` with `params` bound; its rows (a small result) as dicts.
        Errors name `where` (the file or table read); `name` names the statement."""
        ...

    def frame(self, sql: str, params: Mapping[str, Any], *, name: str = "") -> pl.DataFrame:
        """Run DuckDB `sql`; its rows as a polars frame (the caller bounds its size)."""
        ...

    def write(self, sql: str, params: Mapping[str, Any], path: str, *, name: str = "") -> int:
        """Run DuckDB `sql` and write its rows, in order, as Parquet at `path` (a file or a
        folder of ordered parts); the number of rows. Nothing passes through the driver."""
        ...

    def columns(self, path: str) -> dict[str, str]:
        """Column name (lower case) -> DuckDB type name of a Parquet/CSV file."""
        ...

    def table_columns(self, table: str) -> list[tuple[str, str]]:
        """(name, DuckDB type) of a contract table (sends, outcomes, users, assignments)."""
        ...


def resolve_kind(config: Config, flag: str | None) -> str:
    """`--engine` beats `[engine] kind`."""
    kind = flag or config.engine.kind
    if kind not in KINDS:
        raise UsageError(f"--engine {kind}: must be one of {', '.join(KINDS)}")
    return kind


def open_spark(
    config: Config, tables: Mapping[str, str] | None = None, *, checked: bool = False
) -> Engine:
    """The Spark engine of `config.engine` (pyspark imported here, the session on first
    use). `tables` maps a contract table name (sends, outcomes, users, assignments) to the
    Parquet file or folder it is read from in place; `checked` (lake mode) reads them
    through `[load.columns]` and `load`'s checks, as DuckDB's lake views do."""
    try:
        from upshot.engines.spark import SparkEngine
    except ImportError as exc:
        raise UsageError(
            f"--engine spark needs pyspark and sqlglot: pip install 'upshot[spark]' ({exc})"
        ) from None
    return SparkEngine(
        master=config.engine.spark_master,
        driver_memory=config.engine.spark_driver_memory,
        tables=dict(tables or {}),
        lake=config if checked else None,
    )


def on_engine(con: Any) -> bool:
    """Whether `con` is an engine of this package other than DuckDB (a DuckDB connection
    has no `kind`)."""
    return getattr(con, "kind", "duckdb") != "duckdb"


def rows_of(
    con: Any, sql: str, params: Mapping[str, Any] | None, *, name: str
) -> list[dict[str, Any]]:
    """The rows of DuckDB `sql` as dicts, on a DuckDB connection or on an engine (where the
    statement is transpiled); `name` names it in an engine's errors."""
    if on_engine(con):
        return list(con.fetch(sql, dict(params or {}), "lake", name=name))
    cursor = con.execute(sql, dict(params or {}))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
