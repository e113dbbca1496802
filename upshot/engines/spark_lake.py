"""Lake mode on Spark: the lake's tables read through `load`'s checks, as DuckDB reads them.

`upshot.lake.attach` gives DuckDB views that apply `[load.columns.<table>]`, type every
column as `load` stores it, leave out the rows `load` would quarantine and keep the first
row of a repeated key (by file path, then row in the file). `register` makes the same
views on Spark from the same pieces: the column map, the columns and the folder keys come
from `upshot.lake.source` (DuckDB reads only the Parquet footers and the file names, on
the driver), and the validating SQL is `load_checks.validating`'s, transpiled. Spark reads
the files itself, in place: each row's file and row number come from Spark's `_metadata`
(`file_path`, `row_index`), joined to the file's rank and partition-folder values worked
out once per file by DuckDB with `upshot.lake`'s own expressions.

Where Spark cannot read a column as DuckDB does, the table is refused (exit 2) naming the
column, never read differently: text in a timestamp, number or boolean column (each
engine parses text its own way), a column typed differently in different files (DuckDB
reads it as text, Spark cannot merge it), naive timestamps read in a zone other than UTC,
a type Spark reads otherwise, and Delta or Iceberg tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from upshot import contract, lake
from upshot.engines.transpile import duck_type, transpile
from upshot.errors import InputError, UsageError
from upshot.load_checks import FOLDER, validating
from upshot.sql import ident, literal

if TYPE_CHECKING:
    import duckdb
    from pyspark.sql import DataFrame, SparkSession

    from upshot.config import Config

_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT")
# contract type -> the file types both engines turn into it the same way (no text parsing:
# DuckDB and Spark accept different spellings of timestamps, numbers and booleans)
_PORTABLE = {
    "VARCHAR": ("VARCHAR", *_INTEGERS),
    "TIMESTAMPTZ": ("TIMESTAMP WITH TIME ZONE", "TIMESTAMP", "DATE"),
    "BOOLEAN": ("BOOLEAN", *_INTEGERS),
    "DOUBLE": ("DOUBLE", "FLOAT", *_INTEGERS),
}
# a users covariate keeps the file's type: these read alike on both engines
_COVARIATES = (
    "VARCHAR", "BOOLEAN", "DOUBLE", "FLOAT", "DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE",
    *_INTEGERS,
)  # fmt: skip


def register(session: SparkSession, config: Config, tables: Mapping[str, str]) -> None:
    """Temporary views `_lake_<table>` (every row, typed, with `_fail`, `_file`, `_row`) and
    `<table>` (the good rows, deduped, the warehouse's columns) for each contract table;
    `tables` is `lake.lake_tables(config.lake.path)`."""
    import duckdb

    duck = duckdb.connect()
    duck.execute("SET TimeZone = 'UTC'")
    # one instant for every view, so that they agree on "the future"
    clock = f"CAST({literal(datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S.%f'))} AS TIMESTAMPTZ)"
    try:
        for table in lake.TABLES:
            _register_table(session, duck, config, table, tables.get(table), clock)
    finally:
        duck.close()


def _register_table(
    session: SparkSession,
    duck: duckdb.DuckDBPyConnection,
    config: Config,
    table: str,
    path: str | None,
    clock: str,
) -> None:
    spec = contract.TABLES[table]
    if path is not None and lake.table_format(path) != "parquet":
        raise UsageError(
            f"{path}: a {lake.table_format(path)} table; lake mode on Spark reads Parquet files "
            "only: export it as Parquet, or use --engine duckdb"
        )
    src = lake.source(duck, config, table, path) if path is not None else None
    if src is None:
        if table in lake.REQUIRED:
            raise InputError(f"{path}: no Parquet files in it")
        _view(session, table, lake._empty(spec), f"lake {table}")
        return
    names = lake.files(src.path)
    df = _read(session, duck, src, names)
    _refuse_unportable(src, df, config)
    raw = f"_upshot_lake_raw_{table}"
    df.createOrReplaceTempView(raw)
    body, fail, _keys = validating(
        spec, src.columns, src.mapping, config, src.described, clock, src.checked
    )
    checked = f"_lake_{table}"
    _view(
        session,
        checked,
        f"SELECT *, {fail} AS _fail FROM (SELECT {body}, _file, _ord, _row FROM {raw})",
        f"lake {table} checks",
    )
    keys = ", ".join(ident(k) for k in spec.key)
    keyed = " AND ".join(f"{ident(k)} IS NOT NULL" for k in spec.key)
    # the warehouse's column order: the contract's, load_id, then users' covariates
    picked = [ident(c.name) for c in src.columns]
    picked.insert(len(spec.columns), "CAST(NULL AS VARCHAR) AS load_id")
    _view(
        session,
        table,
        f"SELECT {', '.join(picked)} FROM (SELECT *, row_number() OVER (PARTITION BY {keys} "
        f"ORDER BY _ord, _row) AS _first FROM {checked} WHERE _fail IS NULL) "
        f"WHERE NOT ({keyed}) OR _first = 1",
        f"lake {table}",
    )


def _view(session: SparkSession, name: str, sql: str, what: str) -> None:
    text = transpile(sql, "spark", name=what)
    try:
        session.sql(text).createOrReplaceTempView(name)
    except Exception as exc:  # pyspark's AnalysisException and friends
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{what}: Spark refused the view ({first})") from None


def _read(
    session: SparkSession, duck: duckdb.DuckDBPyConnection, src: lake.Source, names: list[str]
) -> DataFrame:
    """The files of `src` on Spark, with `_file` (the path as DuckDB names it), `_ord` (its
    rank in path order), `_row` (from 0) and the folder columns `_folder_<key>`."""
    from pyspark.sql import functions as F  # noqa: N812 (pyspark's own idiom)

    groups = lake._by_types(duck, names)
    if len(groups) > 1:
        mixed = sorted({c for text, _ in groups for c in text})
        raise UsageError(
            f"{src.path}: column {mixed[0]!r} has different types in different files; DuckDB "
            "reads it as text and types each row, Spark cannot read it as one column: rewrite "
            "the files with one type, or use --engine duckdb"
        )
    try:
        # the files listed (as DuckDB lists them), so no partition column is inferred: the
        # folders are read below as `load` reads them; mergeSchema: a column some files lack
        absolute = [str(Path(n).absolute()) for n in names]  # see spark._absolute
        df = session.read.option("mergeSchema", "true").parquet(*absolute)
        spark_files = df.inputFiles()
    except Exception as exc:
        raise InputError(f"{src.path}: Spark cannot read it ({str(exc).splitlines()[0]})") from None
    folders = lake._folder_keys(src.path, names, {c.name for c in src.columns})
    columns = "".join(
        f", {lake._folder_sql(spellings)} AS {ident(FOLDER + key)}"
        for key, spellings in folders.items()
    )
    per_file = duck.execute(
        f"SELECT _file, _ord{columns} FROM (SELECT unnest($names) AS _file, "
        "generate_subscripts($names, 1) - 1 AS _ord)",
        {"names": names},
    ).fetchall()
    # Spark's `_metadata.file_path` is the file's URI, percent-encoded (`file:/a/b%20c`)
    by_path = {Path(row[0]).resolve(): row for row in per_file}
    rows = []
    for uri in spark_files:
        parsed = urlparse(uri)
        local = Path(unquote(parsed.path)).resolve() if parsed.scheme == "file" else None
        row = by_path.get(local) if local is not None else None
        if row is None:
            raise InputError(f"{src.path}: Spark read a file upshot did not list ({uri})")
        rows.append((f"file:{parsed.path}", *row))
    if len(rows) != len(names):
        raise InputError(f"{src.path}: Spark read {len(rows)} of its {len(names)} files")
    side = session.createDataFrame(
        rows,
        ", ".join(
            ["`_spark_file` string", "`_file` string", "`_ord` bigint"]
            + [f"`{FOLDER}{k}` string" for k in folders]
        ),
    )
    meta = df.select(
        "*",
        F.col("_metadata.file_path").alias("_spark_file"),
        F.col("_metadata.row_index").alias("_row"),
    )
    joined = meta.join(F.broadcast(side), "_spark_file", "left")
    # a row whose file the side table misses would lose its rank and folders: stop instead
    missing = F.raise_error(F.concat(F.lit(f"{src.path}: unlisted file "), F.col("_spark_file")))
    return joined.withColumn("_ord", F.coalesce(F.col("_ord"), missing.cast("bigint"))).drop(
        "_spark_file"
    )


def _refuse_unportable(src: lake.Source, df: DataFrame, config: Config) -> None:
    """UsageError naming the first column Spark would read or type otherwise than DuckDB."""
    spark = {f.name.lower(): duck_type(f.dataType.simpleString()) for f in df.schema.fields}
    where = f"{src.path}: lake mode on Spark"
    fix = "rewrite the files with that type, or use --engine duckdb"
    used = {source: name for name, (source, _t) in src.mapping.items()}
    for source, want in src.described:
        if source not in used and want != "VARCHAR":
            continue  # an ignored column is read only by the length check of text fields
        got = spark.get(source.lower())
        if got != want:
            raise UsageError(
                f"{where}: column {source!r} reads as {got} on Spark and {want} on DuckDB; {fix}"
            )
    for column in src.columns:
        if column.name not in src.mapping:
            continue  # absent: its default
        source, source_type = src.mapping[column.name]
        if source.startswith(FOLDER):
            continue  # a folder value: see below
        allowed = _PORTABLE.get(column.type, _COVARIATES)
        if source_type not in allowed:
            raise UsageError(
                f"{where}: column {source!r} ({column.name}) is {source_type}; Spark parses "
                f"it into {column.type} differently from DuckDB, so it reads only "
                f"{', '.join(allowed)} there: {fix}"
            )
        naive = source_type in ("TIMESTAMP", "DATE") and column.type == "TIMESTAMPTZ"
        if naive and config.load.naive_timezone != "UTC":
            raise UsageError(
                f"{where}: column {source!r} ({column.name}) holds times without a zone, read "
                f"in load.naive_timezone {config.load.naive_timezone}; Spark reads them in UTC "
                "only: write them with their zone, or use --engine duckdb"
            )
    from_folders = {k for k, (source, _t) in src.mapping.items() if source.startswith(FOLDER)}
    for column in src.columns:
        if column.name in from_folders | set(src.checked) and column.type != "VARCHAR":
            raise UsageError(
                f"{where}: column {column.name!r} has partition folders, whose text Spark "
                f"parses into {column.type} differently from DuckDB: {fix}"
            )
