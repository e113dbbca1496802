"""SQL in files, and the one quoting helper every user-provided name goes through."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_load import checksum
from upshot.config import Config
from upshot.contract import DECISION_COLUMNS, snake
from upshot.errors import InputError
from upshot.load import load
from upshot.sql import SqlFileError, ident, parse, query


def test_named_statements_parse_with_docstrings():
    text = "-- name: a\n-- first doc\nSELECT 1;\n\n-- name: b\nSELECT 2\n"
    assert parse(text, "x.sql") == {"a": "SELECT 1;", "b": "SELECT 2"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT 1;\n-- name: a\nSELECT 2", "x.sql:1: SQL before the first '-- name:' line"),
        ("-- name: a\nSELECT 1\n-- name: a\nSELECT 2", "x.sql:3: statement 'a' is defined twice"),
        ("-- name: Bad Name\nSELECT 1", "x.sql:1: malformed name line"),
        ("-- name: a\n-- only a comment\n", "x.sql: statement 'a' is empty"),
    ],
)
def test_malformed_sql_files_name_file_and_line(text, message):
    with pytest.raises(SqlFileError) as caught:
        parse(text, "x.sql")
    assert message in str(caught.value)


def test_every_shipped_statement_loads():
    assert "count(*)" in query("load", "fingerprint-seen")
    with pytest.raises(SqlFileError, match="has no statement 'nope'"):
        query("load", "nope")


HOSTILE = st.text(
    alphabet=st.sampled_from(list("aZ_ \"';-/*\n\t()=.,`$1ü")), min_size=1, max_size=24
).filter(lambda s: "\x00" not in s)


@settings(max_examples=60, deadline=None)
@given(names=st.lists(HOSTILE, min_size=1, max_size=4, unique_by=str.lower))
def test_hostile_identifiers_round_trip_through_ident(names):
    with duckdb.connect() as con:
        cols = ", ".join(f"{ident(n)} INTEGER" for n in names)
        con.execute(f"CREATE TABLE t ({cols})")
        con.execute(
            f"INSERT INTO t ({', '.join(ident(n) for n in names)}) VALUES "
            f"({', '.join('1' for _ in names)})"
        )
        described = [r[0] for r in con.execute("DESCRIBE t").fetchall()]
        assert described == names
        row = con.execute(f"SELECT {', '.join(ident(n) for n in names)} FROM t").fetchone()
        assert row == tuple(1 for _ in names)
        # the table is still the only one: nothing hostile ran
        assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (1,)


@settings(max_examples=15, deadline=None)
@given(value=HOSTILE)
def test_hostile_values_and_column_names_load_verbatim(tmp_path_factory, value):
    tmp = tmp_path_factory.mktemp("hostile")
    import polars as pl

    pl.DataFrame(
        {
            "user_id": ["u1"],
            value: [value],  # a hostile covariate name; its value is hostile too
            "tier_name": [value],
        }
    ).write_ndjson(tmp / "users.ndjson")
    db = tmp / "w.duckdb"
    column = snake(value)
    config = Config()
    # names a users covariate may not take: the frame's own columns would clash with it
    clashes = {*DECISION_COLUMNS, *config.objectives, *(f"pre_{o}" for o in config.objectives)}
    if column in ("", "user_id", "tier_name", "load_id") or column in clashes:
        # no usable name, or it collides with another column: the file fails, naming it
        with pytest.raises(InputError, match=r"users\.ndjson: (users )?column"):
            load(str(db), "users", [str(tmp / "users.ndjson")], config=config)
        return
    load(str(db), "users", [str(tmp / "users.ndjson")], config=config)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT tier_name FROM users").fetchone() == (value,)
        got = con.execute(f"SELECT {ident(column)} FROM users").fetchone()
        assert got == (value,)
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert {"sends", "outcomes", "users", "assignments", "quarantine"} <= tables
    assert checksum(db, "users")[0] == 1
