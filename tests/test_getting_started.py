"""`make demo` ends by saying how to put `upshot` on PATH (it lives in the venv)."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def _variables(text: str) -> dict[str, str]:
    return dict(re.findall(r"^(\w+)\s*[:?]?=\s*(\S+)", text, re.MULTILINE))


def _expand(value: str, variables: dict[str, str]) -> str:
    for _ in range(5):  # nested $(VAR)s, as make expands them
        value = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m.group(1), m.group(0)), value)
    return value


def test_make_demo_ends_by_printing_how_to_activate_the_venv():
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", text, re.MULTILINE)
    assert recipe is not None
    lines = [line.strip() for line in recipe.group(1).splitlines()]
    assert lines[0] == "$(BIN)/upshot demo"
    last = _expand(lines[-1], _variables(text))
    assert last.startswith("@echo ")
    assert "source .venv/bin/activate" in last
