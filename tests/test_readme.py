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
    # the commands as printed; the refuters' re-runs (1 + 3 x refute_simulations fits per
    # estimate) are what `upshot run` spends its time on, and the minimum of 2 runs every
    # refuter as the default 5 does (tests/attribution/uplift/test_refute*.py test them)
    (tmp_path / "upshot.toml").write_text("[uplift]\nrefute_simulations = 2\n", encoding="utf-8")
    for args in commands:
        result = run_cli(*args, cwd=tmp_path)
        assert result.code == 0, (
            f"upshot {' '.join(args)} exited {result.code}: {result.err[-800:]}"
        )
    assert (tmp_path / "upshot.duckdb").exists()


def test_every_readme_python_example_runs_verbatim(tmp_path, monkeypatch):
    """Each ```python block of README.md, exactly as printed, in a fresh namespace (the
    imports a reader copies must be the ones the example needs)."""
    from tests.test_docs import README, blocks

    examples = [b for b in blocks(README) if b.lang == "python"]
    assert examples, "README.md has no Python example"
    monkeypatch.chdir(tmp_path)
    for block in examples:
        assert block.marker is None, f"{block.where}: a README example must run, not be skipped"
        exec(compile(block.code, block.where, "exec"), {"__name__": "__readme__"})
