"""State shared by every command: the global options and the configuration they select."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from pathlib import Path

    import polars as pl

    from upshot.config import Config
    from upshot.engines import Engine


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

    def lake_engine(self, command: str) -> Engine | None:
        """The Spark engine over the lake's tables when it is chosen, reading them through
        `[load.columns]` and `load`'s checks as DuckDB's lake views do; None on DuckDB.
        Without a lake a usage error: `command` reads the contract tables in place."""
        if self.engine_kind == "duckdb":
            return None
        from upshot.engines import open_spark
        from upshot.errors import UsageError
        from upshot.lake import lake_tables

        root = self.config.lake.path
        if root is None:
            raise UsageError(
                f"--engine {self.engine_kind}: {command} reads the contract tables in place; "
                "give --lake DIR (`upshot lake export DIR` writes a loaded warehouse there)"
            )
        return open_spark(self.config, lake_tables(root), checked=True)

    @property
    def db_path(self) -> str:
        from upshot.config import resolve_db

        return resolve_db(self.config, self.db)


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
            frame = pl.read_csv(
                path, separator="\t" if ".tsv" in suffix else ",", infer_schema_length=100_000
            )
            return numbers_with_missing(frame, str(path))
        if suffix.endswith((".ndjson", ".jsonl")):
            return pl.read_ndjson(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{path}: {str(exc).splitlines()[0]}") from None
    raise UsageError(f"{flag} {path}: must end in .parquet, .csv, .tsv, .ndjson or .jsonl")


# how R, pandas and spreadsheets write a missing number in a CSV
MISSING = ("NA", "N/A", "NaN", "nan", "NULL", "null", "None", "#N/A", ".")


def numbers_with_missing(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    """Text columns that are numbers apart from spellings of a missing value (R's NA) as
    numbers with those missing. polars reads such a column as text, which would turn a
    numeric covariate into up to 20 one-hot levels of its most frequent values and refuse
    it as an outcome; said on stderr, per column."""
    import polars as pl

    for name, dtype in frame.schema.items():
        if dtype != pl.String:
            continue
        text = frame.get_column(name).str.strip_chars()
        missing = text.is_in(MISSING)
        if not missing.any():
            continue
        numbers = text.cast(pl.Float64, strict=False)
        filled = text.is_not_null() & ~missing & (text != "")
        if numbers.filter(filled).null_count() or not filled.any():
            continue  # some other text: a real text column
        frame = frame.with_columns(numbers.set(missing, None).alias(name))
        spelled = sorted(set(text.filter(missing).to_list()))
        info(
            f"{source}: column {name!r}: {int(missing.sum()):,} {'/'.join(spelled)} read as missing"
        )
    return frame
