"""The embedded engine: DuckDB statements run as written on one connection."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    import polars as pl


@dataclass(frozen=True, slots=True)
class DuckDBEngine:
    """`con` with the `Engine` methods; `fetch` keeps `experiments.query.fetch`'s guards
    (no progress bar on stdout, NaN not folded away by Parquet statistics)."""

    con: duckdb.DuckDBPyConnection
    kind: str = "duckdb"

    def fetch(
        self,
        sql: str,
        params: Mapping[str, Any],
        where: str,
        *,
        name: str = "",  # noqa: ARG002 (DuckDB names the file)
    ) -> list[dict[str, Any]]:
        from upshot.experiments.query import fetch

        return fetch(self.con, sql, params, where)

    def frame(
        self,
        sql: str,
        params: Mapping[str, Any],
        *,
        name: str = "",  # noqa: ARG002 (DuckDB errors name the statement's position)
    ) -> pl.DataFrame:
        return self.con.sql(sql, params=dict(params)).pl()

    def write(
        self,
        sql: str,
        params: Mapping[str, Any],
        path: str,
        *,
        name: str = "",  # noqa: ARG002
    ) -> int:
        self.con.sql(sql, params=dict(params)).write_parquet(path)
        row = self.con.execute("SELECT count(*) FROM read_parquet(?)", [path]).fetchone()
        return int(row[0]) if row else 0

    def table_columns(self, table: str) -> list[tuple[str, str]]:
        rows = self.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? ORDER BY ordinal_position",
            [table],
        ).fetchall()
        return [(str(a), str(b)) for a, b in rows]

    def columns(self, path: str) -> dict[str, str]:
        from upshot.experiments.query import table_columns

        return table_columns(self.con, path)
