"""The weekly attribution report: pre-aggregated data, Altair charts, alerts, HTML.

A map of the package:

- `data`              `report_data`: one week's aggregates from the warehouse, k-anonymised
                      by user counts (per arm), never by the size of an estimate
- `uplift_view`       uplift per class x objective and the headline totals
- `significance`      what is significant: one correction family per week, one decision
                      per row, read by the headline, the charts, the summary and alerts
- `experiments_view`  the experiments live in a week, their results and decompositions
- `weights_view`      the week's weight file beside the previous week's
- `health`            reachability per channel, rows per day, coverage
- `tables`            shared helpers: named queries as dicts, clean and stable numbers
- `alerts`            alert rules with severities (`evaluate`), the content of alerts.json
- `charts`            which charts a week has data for (`charts`), as Vega-Lite specs
- `chart_effects`     estimates with CIs: uplift, opt-out harm, experiments, touch credit
- `chart_trends`      levels and trends: past weeks, weights, reachability, rows per day
- `chart_style`       the shared look: sizes, colours, theme
- `render`            PNG/SVG through vl-convert, and the inlined Vega JavaScript
- `html`              the self-contained `index.html` (`page`)
- `html_sections`     its sections; `html_experiments` the experiments; `html_kit` blocks
- `fmt`               how numbers read: signs, units, CIs, n/a
- `summary`           `summary.md` for e-mail and chat
- `weekly`            `build`: all of the above into `reports/<week>/`, swapped in at once

Nothing here imports Altair, vl-convert or polars at module level.
"""
