"""Every SQL statement lives in a `.sql` file here, loaded by name.

A file holds named statements in the aiosql style::

    -- name: arm-counts
    -- Users per arm of one experiment.
    SELECT variant, count(*) FROM assignments WHERE experiment_id = $experiment GROUP BY 1;

Values are always bound parameters (`$name`); identifiers that users provide go through
`ident`, the one quoting helper. A malformed file fails with its file and line.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from upshot.errors import UpshotError

_NAME = re.compile(r"^--\s*name:\s*([a-z0-9_-]+)\s*$")


class SqlFileError(UpshotError):
    """A `.sql` file in the package is malformed."""


def ident(name: str) -> str:
    """Quote an identifier for DuckDB, whatever characters it holds."""
    if not isinstance(name, str) or name == "" or "\x00" in name:
        raise UpshotError(f"identifier {name!r} is empty or holds a NUL byte")
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """Quote a string literal, for the few places DuckDB takes no parameter (paths in DDL)."""
    if "\x00" in value:
        raise UpshotError(f"string {value!r} holds a NUL byte")
    return "'" + value.replace("'", "''") + "'"


def parse(text: str, source: str) -> dict[str, str]:
    """Split a `.sql` file's text into its named statements."""
    statements: dict[str, str] = {}
    name: str | None = None
    body: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        match = _NAME.match(line.strip())
        if match:
            if name is not None:
                statements[name] = _finish(body, source, name)
            name = match.group(1)
            if name in statements:
                raise SqlFileError(f"{source}:{lineno}: statement {name!r} is defined twice")
            body = []
        elif line.strip().lower().startswith("-- name"):
            raise SqlFileError(f"{source}:{lineno}: malformed name line {line.strip()!r}")
        elif name is None:
            if line.strip() and not line.strip().startswith("--"):
                raise SqlFileError(f"{source}:{lineno}: SQL before the first '-- name:' line")
        else:
            body.append(line)
    if name is not None:
        statements[name] = _finish(body, source, name)
    return statements


def _finish(body: list[str], source: str, name: str) -> str:
    sql = "\n".join(line for line in body if not line.strip().startswith("--")).strip()
    if not sql:
        raise SqlFileError(f"{source}: statement {name!r} is empty")
    return sql


@cache
def _file(module: str) -> dict[str, str]:
    path = resources.files("upshot.sql").joinpath(f"{module}.sql")
    return parse(path.read_text(encoding="utf-8"), f"upshot/sql/{module}.sql")


def query(module: str, name: str) -> str:
    """The statement `name` of `upshot/sql/<module>.sql`."""
    statements = _file(module)
    if name not in statements:
        raise SqlFileError(f"upshot/sql/{module}.sql has no statement {name!r}")
    return statements[name]
