"""A file's header read as the input contract: column maps, missing and clashing columns.

`load` reads each file's header through `renamed` right after opening it, so everything
after (typing, validation, quarantine) sees contract names only. The map comes from
`[load.columns.<table>]` in upshot.toml and `upshot load --map` (which wins).
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from upshot import contract
from upshot.errors import InputError, UsageError

if TYPE_CHECKING:
    from upshot.config import Config
    from upshot.contract import TableSpec

FOLDER = "_folder_"  # prefix of the source columns that hold a file's partition folders


def column_map(table: str, config: Config, cli_map: dict[str, str] | None) -> dict[str, str]:
    """file column → contract column, from `[load.columns.<table>]` and `--map` (which wins);
    both are written contract = file, in any case."""
    if table not in contract.TABLES:
        raise UsageError(f"table == {table!r}, must be one of {', '.join(contract.TABLES)}")
    spec = contract.TABLES[table]
    wanted = {**config.load.columns.get(table, {}), **(cli_map or {})}
    known = [c.name for c in spec.columns]
    out: dict[str, str] = {}
    for target, source in wanted.items():
        name = contract.snake(target)
        if not spec.open_columns and name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(
                f"column map {target}={source}: {table} has no column {target!r}{hint}; "
                f"its columns: {', '.join(known)}"
            )
        out[contract.snake(source)] = name
    return out


def renamed(
    path: str, header: list[tuple[str, str]], renames: dict[str, str]
) -> dict[str, tuple[str, str]]:
    """contract name → (source column, source type): the file's header, snake_cased, with
    the column map applied, before any validation reads it."""
    mapping: dict[str, tuple[str, str]] = {}
    for name, type_ in header:
        if name in ("_row", "_json_ok") or name.startswith(FOLDER):
            continue
        norm = contract.snake(name)
        if not norm:
            raise InputError(f"{path}: column {name!r} has no letters or digits to name it by")
        norm = renames.get(norm, norm)
        if norm in mapping:
            raise InputError(
                f"{path}: columns {mapping[norm][0]!r} and {name!r} both mean {norm!r}"
            )
        mapping[norm] = (name, type_)
    return mapping


def require(path: str, spec: TableSpec, mapping: dict[str, tuple[str, str]]) -> None:
    """Name every required column the file lacks at once, with the file's columns and the
    closest of them, so one edit of the column map fixes the file."""
    missing = [c for c in spec.required if c not in mapping]
    if not missing:
        return
    has = [source for source, _ in mapping.values() if not source.startswith(FOLDER)]
    # the close matches are among the columns no contract column already claims
    free = [n for n, (src, _) in mapping.items() if not src.startswith(FOLDER)]
    free = [n for n in free if n not in {c.name for c in spec.columns}]
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, free, n=1, cutoff=0.4)
        if close:
            hints.append(f"--map {name}={close[0]}")
    suggest = f"; perhaps {' '.join(hints)}" if hints else ""
    raise InputError(
        f"{path}: missing required column(s) {', '.join(missing)} for table {spec.name}; "
        f"the file has {', '.join(has) or 'no columns'}{suggest} (or [load.columns."
        f"{spec.name}] in upshot.toml); nothing of this file was loaded"
    )


def refuse_clashes(
    path: str, spec: TableSpec, mapping: dict[str, tuple[str, str]], config: Config
) -> None:
    """A users column named like a decision column or an objective would break every later
    decision frame (they share its columns): refuse it here, where it can be renamed."""
    if not spec.open_columns:
        return
    taken = dict.fromkeys(contract.DECISION_COLUMNS, "a decision column")
    taken |= dict.fromkeys(config.objectives, "an objective")
    if config.uplift.pre_window_days > 0:  # the frame adds each objective's pre-period value
        taken |= dict.fromkeys((f"pre_{o}" for o in config.objectives), "a pre-period covariate")
    for name, (source, _) in sorted(mapping.items()):
        if name in taken:
            raise InputError(
                f"{path}: users column {source!r} has the name of {taken[name]} ({name}); "
                f"rename it, e.g. --map {name}_user={source}; nothing of this file was loaded"
            )
