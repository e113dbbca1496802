"""One output-options mechanism for every command that prints rows.

`--format table|json|csv|ndjson` (and `--json` as its shorthand). `json` prints exactly
one JSON document on stdout; progress and logs go to stderr.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any

import typer

from upshot.results import dumps, format_value

_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?%?$")


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    ndjson = "ndjson"


FormatOption = Annotated[
    Format,
    typer.Option("--format", "-f", help="Output: a table for people, or json/csv/ndjson."),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Shorthand for --format json: one JSON document on stdout.")
]


def resolve(fmt: Format, as_json: bool) -> Format:
    return Format.json if as_json else fmt


def emit(
    fmt: Format,
    document: dict[str, Any],
    tables: dict[str, list[dict[str, Any]]],
    *,
    main: str | None = None,
) -> None:
    """Print `document` as JSON, or its `tables` for people, or table `main` as CSV/NDJSON."""
    if fmt is Format.json:
        sys.stdout.write(dumps(document) + "\n")
        return
    rows_key = main or next(iter(tables), None)
    if fmt in (Format.csv, Format.ndjson):
        rows = tables.get(rows_key, []) if rows_key else []
        if fmt is Format.ndjson:
            for row in rows:
                sys.stdout.write(dumps(row) + "\n")
            return
        names = list(rows[0]) if rows else []
        sys.stdout.write(_csv_line(csv_cell(n) for n in names))
        for row in rows:
            sys.stdout.write(_csv_line(csv_cell(row.get(n)) for n in names))
        return
    print_tables(tables)


def csv_cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows, never runs: text starting with = + - @ tab or CR
    gets a leading `'` (OWASP CSV injection); numbers, negative ones included, stay numbers."""
    text = format_value("", value)
    if isinstance(value, str) and text.startswith(_FORMULA) and not _NUMBER.match(text):
        return "'" + text
    return text


def _csv_line(cells: Iterable[str]) -> str:
    # RFC 4180 quoting by hand: Python 3.11's csv module leaves a lone CR unquoted, which
    # splits the record for most readers
    return (
        ",".join(
            '"' + c.replace('"', '""') + '"' if any(ch in c for ch in ',"\r\n') else c
            for c in cells
        )
        + "\n"
    )


def print_tables(tables: dict[str, list[dict[str, Any]]]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # piped output is read by people too (less, CI logs): do not squeeze it to 80 columns;
    # every value and title is a Text, so names print literally, never as Rich markup
    console = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200)
    for title, rows in tables.items():
        if not rows:
            console.print(Text.assemble((title, "italic"), ": (none)"))
            continue
        table = Table(title=Text(title), title_justify="left", show_edge=False)
        names = list(rows[0]) if rows else []
        cells = [[format_value(n, row.get(n)) for n in names] for row in rows]
        for i, name in enumerate(names):
            if _is_text(rows, name):
                # folded onto a second line when the terminal is narrow, never cut with "…"
                table.add_column(Text(name), justify="left", overflow="fold")
            else:  # a number is never cut or wrapped: text columns give way instead
                width = max(len(c[i]) for c in cells)
                table.add_column(Text(name), justify="right", no_wrap=True, min_width=width)
        for row_cells in cells:
            table.add_row(*(Text(c) for c in row_cells))
        console.print(table)


def _is_text(rows: list[dict[str, Any]], name: str) -> bool:
    return all(isinstance(r.get(name), str | type(None)) for r in rows)
