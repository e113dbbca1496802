"""The Spark engine: the same DuckDB statements, transpiled, over files read in place.

The session starts on the first statement, not before (`upshot --engine spark --help`
starts no JVM). A local master (`local[N]`) runs in this process's JVM with
`spark_driver_memory`; `spark://host:7077` is a standalone cluster; `sc://host:15002` is
Spark Connect. The session time zone is UTC (the warehouse's timestamps are UTC
instants), the UI is off and the JVM logs only errors.

Files become temporary views: a user-level file through `read_parquet($path)` in a
statement, a contract table (sends, outcomes, users, assignments) by its name from
`tables`. Only the statement's result comes back to this process: callers ask for
aggregates, or samples they cap.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from upshot.engines.transpile import duck_type, split_order, transpile
from upshot.errors import InputError, UsageError

if TYPE_CHECKING:
    import polars as pl
    from pyspark.sql import DataFrame, SparkSession

    from upshot.config import Config

# Spark's type names -> DuckDB's, for the code that reads a file's column types
CONTRACT = ("sends", "outcomes", "users", "assignments")


def spark_session(master: str, driver_memory: str = "1g") -> SparkSession:
    """The session at `master` (one per process and master; a second call reuses it)."""
    import warnings

    # pyspark logs every refused statement's Java stack as JSON to stderr; upshot raises
    # one line naming the statement instead
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
    # pyspark warns about the pandas version, which no upshot pass goes through
    warnings.filterwarnings("ignore", "PySpark does not yet fully support", FutureWarning)
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", _python())
    if master.startswith("sc://"):
        builder = SparkSession.builder.remote(master)
    else:
        builder = (
            SparkSession.builder.master(master)
            .config("spark.driver.memory", driver_memory)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            # small aggregates: 200 shuffle partitions only add overhead on a few local
            # cores (a cluster keeps Spark's default, which adaptive execution coalesces)
            .config("spark.sql.shuffle.partitions", _partitions(master))
            .config("spark.driver.extraJavaOptions", _quiet())
        )
    session = builder.appName("upshot").config("spark.sql.session.timeZone", "UTC").getOrCreate()
    session.conf.set("spark.sql.session.timeZone", "UTC")
    # ANSI: a failed cast, an overflow or a division by zero is an error, as in DuckDB
    # (where x / 0.0 is inf); non-ANSI Spark would return NULL and sums would skip it
    session.conf.set("spark.sql.ansi.enabled", "true")
    # instants written as UTC-adjusted microseconds, as DuckDB writes TIMESTAMPTZ (Spark's
    # default INT96 reads back as a zone-less nanosecond time)
    session.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    # the experiment statistics are one aggregate of ~6 sums per metric (130 at 20 metrics);
    # past 100 fields Spark drops whole-stage code generation and interprets the
    # aggregate, 1.7x slower at 10M users (its generated code splits the functions, and
    # falls back by itself past the JVM's method size)
    session.conf.set("spark.sql.codegen.maxFields", "1000")
    if not master.startswith("sc://"):
        session.sparkContext.setLogLevel("ERROR")
    return session


def _partitions(master: str) -> str:
    if master.startswith("local"):
        cores = master[master.find("[") + 1 : -1] if "[" in master else "1"
        n = {"*": os.cpu_count() or 2}.get(cores, int(cores) if cores.isdigit() else 2)
        return str(2 * n)
    return "200"


def _quiet() -> str:
    """The JVM option that points log4j at upshot's errors-only configuration."""
    path = Path(__file__).with_name("log4j2.properties")
    return f"-Dlog4j2.configurationFile=file:{path}"


def _python() -> str:
    import sys

    return sys.executable


class SparkEngine:
    """Statements on Spark at `master`; `tables` maps contract tables to files/folders."""

    kind = "spark"

    def __init__(
        self,
        master: str,
        driver_memory: str = "1g",
        tables: Mapping[str, str] | None = None,
        lake: Config | None = None,
    ):
        self.master = master
        self.driver_memory = driver_memory
        self.tables = dict(tables or {})
        # lake mode: the tables read through `load`'s column maps and checks, as DuckDB's
        # lake views read them (`upshot.engines.spark_lake`); else read as they are
        self.lake = lake
        self._session: SparkSession | None = None
        self._views: dict[str, str] = {}

    @property
    def session(self) -> SparkSession:
        if self._session is None:
            session = spark_session(self.master, self.driver_memory)
            if self.lake is not None:
                from upshot.engines.spark_lake import register

                register(session, self.lake, self.tables)
            else:
                for table, path in self.tables.items():
                    self._register_on(session, table, "parquet", path)
            self._session = session
        return self._session

    def _read(self, kind: str, path: str) -> DataFrame:
        return self._read_on(self.session, kind, path)

    def _read_on(self, session: SparkSession, kind: str, path: str) -> DataFrame:
        reader = session.read
        path = _absolute(path)
        if kind == "csv":
            return reader.csv(path, header=True, inferSchema=True)
        # hive-partitioned folders: partition columns are typed from their values
        return reader.parquet(path)

    def _register(self, name: str, kind: str, path: str) -> str:
        return self._register_on(self.session, name, kind, path)

    def _register_on(self, session: SparkSession, name: str, kind: str, path: str) -> str:
        try:
            df = self._read_on(session, kind, path)
        except Exception as exc:  # pyspark's AnalysisException and friends
            raise InputError(f"{path}: Spark cannot read it ({_first(exc)})") from None
        if name == "users" and "load_id" not in [c.lower() for c in df.columns]:
            # the frame keeps one row per user by the latest load; a lake has no loads
            from pyspark.sql import functions

            df = df.withColumn("load_id", functions.lit(None).cast("bigint"))
        if name == "users":
            # covariates in the order DuckDB's lake views and `load` give them (sorted by
            # name): the estimators see the columns in one order whatever the engine
            rest = sorted(c for c in df.columns if c not in ("user_id", "load_id"))
            df = df.select("user_id", *rest, "load_id")
        df.createOrReplaceTempView(name)
        self._views[f"{kind}:{path}"] = name
        return name

    def relation(self, kind: str, path: str) -> str:
        """The temporary view reading the file `path` (registered on first use)."""
        key = f"{kind}:{path}"
        if key not in self._views:
            if "*" not in path and "://" not in path and not Path(path).exists():
                raise UsageError(f"{path}: no such file")
            digest = hashlib.sha256(key.encode()).hexdigest()[:12]
            self._register(f"upshot_file_{digest}", kind, path)
        return self._views[key]

    def _sql(self, sql: str, params: Mapping[str, Any], name: str, where: str) -> DataFrame:
        text = transpile(sql, "spark", name=name or where, params=params, relations=self.relation)
        try:
            return self.session.sql(text)
        except Exception as exc:
            what = name or "the statement"
            raise InputError(f"{where}: Spark refused {what} ({_first(exc)})") from None

    def fetch(
        self, sql: str, params: Mapping[str, Any], where: str, *, name: str = ""
    ) -> list[dict[str, Any]]:
        df = self._sql(sql, params, name, where)
        try:
            # through Arrow: instants come back as UTC-aware datetimes, as DuckDB's do
            # (Row objects would turn them into naive local times)
            table = df.toArrow()
        except Exception as exc:
            raise InputError(f"{where}: {_first(exc)}") from None
        names = _unique(df.columns)
        columns = [[_plain(v) for v in col.to_pylist()] for col in table.columns]
        return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]

    def frame(self, sql: str, params: Mapping[str, Any], *, name: str = "") -> pl.DataFrame:
        import polars as pl

        df = self._sql(sql, params, name, name or "frame")
        try:
            table = df.toArrow()
        except Exception as exc:
            raise InputError(f"{name or 'frame'}: {_first(exc)}") from None
        return pl.from_arrow(table)  # type: ignore[return-value]

    def write(self, sql: str, params: Mapping[str, Any], path: str, *, name: str = "") -> int:
        target = _absolute(path)
        body, order = split_order(sql)
        scratch = f"{target}.unsorted" if order else ""
        try:
            if scratch:
                # A global sort ranges rows over the parts by sampling its input first,
                # and the sample ran the whole statement again (the frame's join and
                # aggregates: 40% of its time). Written once unsorted, the sample and the
                # sort read the written rows instead.
                self._sql(body, params, name, path).write.mode("overwrite").parquet(scratch)
                view = f"upshot_unsorted_{hashlib.sha256(scratch.encode()).hexdigest()[:12]}"
                self.session.read.parquet(scratch).createOrReplaceTempView(view)
                sql = f"SELECT * FROM {view} ORDER BY {order}"
            df = self._sql(sql, params, name, path)
            # the workers write ordered parts (a global sort ranges rows over the parts)
            df.write.mode("overwrite").parquet(target)
            return int(self.session.read.parquet(target).count())
        except InputError:
            raise
        except Exception as exc:
            raise InputError(
                f"{path}: Spark cannot write {name or 'the rows'} ({_first(exc)})"
            ) from None
        finally:
            if scratch:
                _remove(scratch)

    def columns(self, path: str) -> dict[str, str]:
        kind = "csv" if path.lower().endswith((".csv", ".tsv", ".csv.gz", ".txt")) else "parquet"
        view = self.relation(kind, path)
        fields = self.session.table(view).schema.fields
        return {f.name.lower(): duck_type(f.dataType.simpleString()) for f in fields}

    def table_columns(self, table: str) -> list[tuple[str, str]]:
        """(name, DuckDB type) of a registered contract table, in its order."""
        # lake mode registers every contract table (empty when the lake lacks it)
        if table not in self.tables and not (self.lake is not None and table in CONTRACT):
            raise UsageError(f"the Spark engine reads no {table!r} table (give its path)")
        fields = self.session.table(table).schema.fields
        return [(f.name, duck_type(f.dataType.simpleString())) for f in fields]


def _absolute(path: str) -> str:
    """A local path made absolute: the JVM resolves a relative one against the directory
    it started in, which a long-lived process may have left since."""
    return path if "://" in path else str(Path(path).absolute())


def _remove(folder: str) -> None:
    """A scratch folder the driver wrote through Spark (local paths; a remote store's
    scratch is left to its lifecycle rules)."""
    import shutil

    if "://" not in folder:
        shutil.rmtree(folder, ignore_errors=True)


def _unique(names: list[str]) -> list[str]:
    """Column names made unique (Spark names every unaliased scalar subquery alike; a
    dict keyed by them would keep only the last)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name] - 1}")
    return out


def _plain(value: Any) -> Any:
    # a DECIMAL comes back as Decimal; the statistics read floats
    return float(value) if isinstance(value, Decimal) else value


def _first(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
