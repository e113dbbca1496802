"""upshot: causal attribution and experimentation for consumer messaging platforms.

A map of the package:

- `upshot.config`       `upshot.toml`: objectives, metrics, governance, paths (typed, validated)
- `upshot.store`        the DuckDB warehouse: connections, migrations, writer lock, run registry
- `upshot.load`         reading, validating, quarantining and appending logs
- `upshot.simulate`     a synthetic messaging world with known ground truth
- `upshot.errors`       the flat hierarchy of domain errors and their exit codes
- `upshot.results`      the result-collection mixin (`to_polars`, `to_markdown`, ...)
- `upshot.sql`          every SQL statement, loaded by name; `ident` quotes identifiers
- `upshot.experiments`  A/B analysis from sufficient statistics
- `upshot.attribution`  per-send frames, EconML uplift, DoWhy refutation, weights, OPE
- `upshot.reports`      the weekly report: Altair charts, HTML, alerts
- `upshot.cli`          the Typer command line, a thin layer over the above
"""

__version__ = "0.1.0"
