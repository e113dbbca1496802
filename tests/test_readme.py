"""The README's tour runs as written: the documentation cannot drift from the CLI."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.conftest import ROOT, run_cli


def tour_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## A tour in five minutes", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block, "the tour has no ```sh block"
    commands = []
    for line in block.group(1).splitlines():
        words = shlex.split(line, comments=True)
        if words:
            assert words[0] == "upshot", line
            commands.append(words[1:])
    return commands


@pytest.mark.slow
def test_the_readme_tour_runs(tmp_path):
    commands = tour_commands()
    assert len(commands) >= 10
    for args in commands:
        result = run_cli(*args, cwd=tmp_path)
        assert result.code == 0, (
            f"upshot {' '.join(args)} exited {result.code}: {result.err[-800:]}"
        )
    assert (tmp_path / "upshot.duckdb").exists()
