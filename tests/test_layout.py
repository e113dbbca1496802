"""The house rules of the package layout, checked on the source: arrows run one way, the
weight-file reader stays light, and no two modules import each other (even lazily or for
types only)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "upshot"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """upshot modules `path` imports anywhere: functions and `if TYPE_CHECKING:` included,
    since a type-only import is a dependency of the design all the same."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("upshot"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("upshot"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in _imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def test_no_two_modules_import_each_other():
    graph = _graph()
    pairs = sorted(
        (a, b)
        for a, targets in graph.items()
        for b in targets
        if a < b and a in graph[b] and not b.startswith(f"{a}.")  # a package and its module
    )
    assert pairs == []


def test_attribution_and_experiments_never_import_reports_pipeline_or_cli():
    graph = _graph()
    upward = sorted(
        (a, b)
        for a, targets in graph.items()
        if a.startswith(("upshot.attribution", "upshot.experiments", "upshot.period"))
        for b in targets
        if b.startswith(("upshot.reports", "upshot.pipeline", "upshot.cli"))
    )
    assert upward == []


def test_the_pipeline_imports_reports_only_to_build_the_report():
    graph = _graph()
    used = sorted(
        b
        for a, t in graph.items()
        if a.startswith("upshot.pipeline")
        for b in t
        if b.startswith("upshot.reports")
    )
    # `weekly.build` makes the report; a week's result carries it and its `Alerts` (types)
    assert set(used) <= {"upshot.reports.weekly", "upshot.reports.alerts"}


def test_no_two_modules_of_one_subject_share_a_name():
    names: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name != "__init__.py":
            names.setdefault(path.stem, []).append(_module_name(path))
    assert sorted(names["weights"]) == ["upshot.cli.weights"]
    assert "value" not in names
    assert "valuation" not in names


def test_the_weight_file_reader_loads_no_model_or_engine_library():
    code = (
        "import sys, upshot; upshot.read_weights; "
        "heavy = sorted(m for m in ('econml', 'sklearn', 'dowhy', 'duckdb', 'lightgbm', "
        "'statsmodels', 'altair', 'ray') if m in sys.modules); print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"
