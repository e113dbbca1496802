"""Draw docs/scale_curves.svg and docs/scale_engines.svg from the wall times `bench_scale.py`
measured (see docs/scale.md).

    .venv/bin/python benchmarks/plot_scale.py

The figures below are copied from the bench_scale.py runs recorded in docs/scale.md; this
script only draws them, with the straight line fitted to the uncapped sizes (1-10 M)
extended to 30 M, where every class exceeds `max_rows_per_fit` and is fitted on 2 M rows.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import numpy as np
import polars as pl
import vl_convert as vlc

# (decisions in millions, backend, seconds); 30 M: capped classes, measured under load
MEASURED = [
    (1, "local", 127.0),
    (3, "local", 246.2),
    (10, "local", 671.6),
    (30, "local", 510.3),
    (1, "ray", 101.4),
    (3, "ray", 227.2),
    (10, "ray", 587.3),
    (30, "ray", 509.7),
]


# the decision frame built from a Parquet lake and written to Parquet, per engine
# (`bench_scale.py --engine duckdb,spark`, session 6): (millions, engine, min s, median s)
FRAME = [
    (10, "duckdb", 96.8, 107.7),
    (10, "spark", 220.3, 226.4),
    (30, "duckdb", 542.2, 542.2),  # one run each; Spark's beside a concurrent make test
    (30, "spark", 1127.5, 1127.5),
]


def engines_chart() -> alt.LayerChart:
    points = pl.DataFrame(FRAME, schema=["millions", "engine", "min_s", "median_s"], orient="row")
    x = alt.X("millions:Q", title="decisions (millions)")
    y = alt.Y("min_s:Q", title="wall time (s), minimum of the runs, 2 cores")
    color = alt.Color("engine:N", title="engine")
    return alt.layer(
        alt.Chart(points).mark_line().encode(x, y, color),
        alt.Chart(points).mark_point(filled=True, size=70).encode(x, y, color),
    ).properties(
        width=520,
        height=300,
        title="Decision frame from the lake: DuckDB against Spark local[2] (session start apart)",
    )


def main() -> None:
    docs = Path(__file__).resolve().parents[1] / "docs"
    engines = docs / "scale_engines.svg"
    engines.write_text(vlc.vegalite_to_svg(engines_chart().to_json()))
    print(engines)
    points = pl.DataFrame(MEASURED, schema=["millions", "backend", "seconds"], orient="row")
    lines = []
    for backend in ("local", "ray"):
        part = points.filter((pl.col("backend") == backend) & (pl.col("millions") <= 10))
        slope, intercept = np.polyfit(part["millions"], part["seconds"], 1)
        lines += [(m, backend, intercept + slope * m) for m in (1, 30)]
    fitted = pl.DataFrame(lines, schema=["millions", "backend", "seconds"], orient="row")
    x = alt.X("millions:Q", title="decisions (millions)")
    y = alt.Y("seconds:Q", title="wall time (s), 8 classes, 2 cores")
    color = alt.Color("backend:N", title="backend")
    chart = alt.layer(
        alt.Chart(fitted).mark_line(strokeDash=[4, 4]).encode(x, y, color),
        alt.Chart(points).mark_point(filled=True, size=70).encode(x, y, color),
    ).properties(
        width=520,
        height=300,
        title="Uplift fit time: linear up to 10 M; at 30 M each class is capped at 2 M rows",
    )
    out = Path(__file__).resolve().parents[1] / "docs" / "scale_curves.svg"
    out.write_text(vlc.vegalite_to_svg(chart.to_json()))
    print(out)


if __name__ == "__main__":
    main()
