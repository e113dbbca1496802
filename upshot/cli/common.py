"""State shared by every command: the global options and the configuration they select."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, cast

import typer

if TYPE_CHECKING:
    from pathlib import Path

    import polars as pl

    from upshot.config import Config
    from upshot.engines import Engine
    from upshot.engines.spark import SparkEngine


# the ISO week a weekly command works on; `upshot run` and `upshot report weekly` share it
WeekOption = Annotated[
    str | None,
    typer.Option(
        "--week",
        help="ISO week of the decisions, e.g. 2026-W47 (Monday to Monday, UTC). Default: "
        "the last complete week in report.business_timezone.",
        show_default=False,
    ),
]


@dataclass
class State:
    db: str | None = None
    config_path: str | None = None
    debug: bool = False
    lake: str | None = None  # --lake DIR, over [lake] path
    engine: str | None = None  # --engine; see `engine_kind`
    _config: Config | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            import dataclasses

            from upshot.config import Lake, load_config

            config = load_config(self.config_path)
            if self.lake is not None:
                config = dataclasses.replace(config, lake=Lake(path=self.lake))
            self._config = config
        return self._config

    @property
    def engine_kind(self) -> str:
        """`--engine`, else `[engine] kind`: duckdb or spark."""
        from upshot.engines import resolve_kind

        return resolve_kind(self.config, self.engine)

    def open_engine(self, tables: dict[str, str] | None = None) -> Engine | None:
        """The Spark engine when it is chosen (`tables`: contract table -> path), else
        None: the command runs on its DuckDB connection as ever."""
        if self.engine_kind == "duckdb":
            return None
        from upshot.engines import open_spark

        return open_spark(self.config, tables)

    @property
    def db_path(self) -> str:
        from upshot.config import resolve_db

        return resolve_db(self.config, self.db)


def spark_on_lake(st: State, command: str) -> Engine | None:
    """The Spark engine over the lake's files when `--engine spark` is chosen, refusing a
    lake that Spark would read differently from DuckDB's checked views; else None."""
    if st.engine_kind == "duckdb":
        return None
    from upshot.engines.guard import refuse_dirty_lake
    from upshot.errors import UsageError
    from upshot.lake import lake_tables

    lake = st.config.lake.path
    if lake is None:
        raise UsageError(
            f"--engine {st.engine_kind}: {command} reads the contract tables in place; give "
            "--lake DIR (`upshot lake export DIR` writes a loaded warehouse there)"
        )
    engine = cast("SparkEngine", st.open_engine(lake_tables(lake)))
    refuse_dirty_lake(engine, lake)
    return engine


def state(ctx: typer.Context) -> State:
    """The global options, from the root command's context."""
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj


def info(message: str) -> None:
    """Progress and notes go to stderr so stdout stays a clean document."""
    sys.stderr.write(message + "\n")


def progress_enabled() -> bool:
    return sys.stderr.isatty()


def read_frame(path: Path, flag: str) -> pl.DataFrame:
    """A `--table`-style file (Parquet, CSV/TSV, NDJSON) as polars, or a one-line error
    naming `flag` and the file."""
    import polars as pl

    from upshot.errors import InputError, UsageError

    if not path.exists():
        raise UsageError(f"{flag} {path}: no such file")
    suffix = "".join(path.suffixes).lower()
    try:
        if suffix.endswith(".parquet"):
            return pl.read_parquet(path)
        if suffix.endswith((".csv", ".csv.gz", ".tsv")):
            return pl.read_csv(
                path, separator="\t" if ".tsv" in suffix else ",", infer_schema_length=100_000
            )
        if suffix.endswith((".ndjson", ".jsonl")):
            return pl.read_ndjson(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{path}: {str(exc).splitlines()[0]}") from None
    raise UsageError(f"{flag} {path}: must end in .parquet, .csv, .tsv, .ndjson or .jsonl")
