"""upshot: causal attribution and experimentation for consumer messaging platforms.

A map of the package:

- `upshot.config`       `upshot.toml`: objectives, metrics, governance, paths (typed, validated)
- `upshot.period`       ISO weeks and `[start, end)` periods, parsed once at the boundary
- `upshot.store`        the DuckDB warehouse: connections, migrations, writer lock, run registry
- `upshot.load`         reading, validating, quarantining and appending logs (with
  `load_checks`: the validating views; `load_append`: counts, dedupe, insert;
  `load_counted`: a file's load in one read; `load_report`: what a load reports)
- `upshot.interrupts`   Ctrl-C however DuckDB surfaces it, as one InterruptError (exit 130)
- `upshot.headers`      a file's header as the input contract: column maps, missing columns
- `upshot.check`        `upshot check`: can the loaded data answer what the config asks
- `upshot.lake`         lake mode: the contract tables read in place (`lake_tables`, the one
  resolution every engine shares; `attach`, DuckDB's validating views), with `lake_check`
  (what `check` counts there) and `lake_export` (`upshot lake export`)
- `upshot.freshness`    late data: reported weeks that gained rows after their report
- `upshot.simulate`     a synthetic messaging world with known ground truth
- `upshot.errors`       the flat hierarchy of domain errors and their exit codes
- `upshot.results`      the result-collection mixin (`to_polars`, `to_markdown`, ...)
- `upshot.sql`          every SQL statement, loaded by name; `ident` quotes identifiers
- `upshot.experiments`  A/B analysis from sufficient statistics
- `upshot.attribution`  uplift (`.uplift`), value weights (`.weights`), touch credit (`.touches`),
                        long-term projection (`.longterm`)
- `upshot.pipeline`     the weekly job and the demo
- `upshot.reports`      the weekly report: Altair charts, HTML, alerts
- `upshot.cli`          the Typer command line, a thin layer over the above

`upshot.read_weights`, `upshot.read_segments` and `upshot.verify_weights` are the reference
reader of weight files that decision services embed; they resolve on first use, so
`import upshot` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {"read_weights": "read", "read_segments": "read_segments", "verify_weights": "verify"}
__all__ = ["read_segments", "read_weights", "verify_weights"]

if TYPE_CHECKING:
    from upshot.attribution.weights.read import read as read_weights
    from upshot.attribution.weights.read import read_segments as read_segments
    from upshot.attribution.weights.read import verify as verify_weights


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'upshot' has no attribute {name!r}")
    from upshot.attribution.weights import read

    return getattr(read, _EXPORTS[name])
