"""Every example in README.md and docs/*.md runs: the documentation cannot drift from the code.

A page's fenced blocks are read in order (docs/development.md states the rules):

- ```python blocks run, in order, in one namespace, in a fresh temporary folder;
- ```sh blocks run line by line through the CLI (every line starts with `upshot`) in that
  folder and must exit 0;
- a block with a title (```csv title="sends.csv"```) is written to that file when reached;
- ```json blocks holding a whole document must parse; ```toml blocks must be a valid
  upshot.toml; ```text, ```console (a transcript), ```cron and ```sql blocks are not run.

An HTML comment on the line before a block changes that: `<!-- docs-test: exit 3 -->`
expects exit code 3 from the block's commands, `<!-- docs-test: compile-only: why -->`
only compiles a Python block, `<!-- docs-test: skip: why -->` leaves the block out.

Pages that run commands or Python are `slow` (make test runs them); each builds its own
warehouse once, the way the page says, and its later blocks share it.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
KNOWN = {"python", "sh", "console", "text", "json", "toml", "cron", "sql", "csv"}
MARKER = re.compile(r"<!--\s*docs-test:\s*(skip|compile-only|exit\s+\d+)\s*(?::\s*(.*?))?\s*-->")
FENCE = re.compile(r"^```(\S*)(.*)$")
TITLE = re.compile(r'title="([^"]+)"')


@dataclass(frozen=True)
class Block:
    """One fenced block of a page: where it starts, its language and text, its marker."""

    page: Path
    line: int
    lang: str
    title: str | None
    marker: str | None
    code: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.lang in ("sh", "python") and self.marker not in ("skip", "compile-only")


def blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        start = i
        i += 1
        while i < len(lines) and lines[i] != "```":
            i += 1
        assert i < len(lines), f"{page.name}:{start + 1}: the block is never closed"
        before = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        marker = MARKER.search(before)
        title = TITLE.search(opening.group(2))
        found.append(
            Block(
                page=page,
                line=start + 1,
                lang=opening.group(1),
                title=title.group(1) if title else None,
                marker=re.sub(r"\s+", " ", marker.group(1)) if marker else None,
                code="\n".join(lines[start + 1 : i]) + "\n",
            )
        )
        i += 1
    return found


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def executing(page: Path) -> bool:
    return any(block.runs or block.title for block in blocks(page))


def run_sh(block: Block, cwd: Path) -> None:
    expected = int(block.marker.split()[1]) if block.marker else 0
    commands = 0
    for line in block.code.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        assert words[0] == "upshot", f"{block.where}: not an upshot command: {line}"
        result = run_cli(*words[1:], cwd=cwd)
        commands += 1
        assert result.code == expected, (
            f"{block.where}: `{line.strip()}` exited {result.code}, expected {expected}: "
            f"{result.err[-1500:]}"
        )
    assert commands, f"{block.where}: an sh block without a command"


def run_page(page: Path, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run the page's blocks in order in `cwd`; return how many ran."""
    namespace: dict[str, object] = {"__name__": "__docs__"}
    ran = 0
    for block in blocks(page):
        if block.marker == "skip":
            continue
        if block.title:
            (cwd / block.title).write_text(block.code, encoding="utf-8")
        if block.lang == "sh":
            run_sh(block, cwd)
            ran += 1
        elif block.lang == "python":
            code = compile(block.code, block.where, "exec")
            if block.marker == "compile-only":
                continue
            monkeypatch.chdir(cwd)
            exec(code, namespace)
            ran += 1
    return ran


# ---------------------------------------------------------------- the pages run


@pytest.mark.parametrize(
    "page",
    [
        pytest.param(page, id=page_id(page), marks=[pytest.mark.slow] if executing(page) else [])
        for page in PAGES
    ],
)
def test_the_page_runs(page, tmp_path, monkeypatch):
    ran = run_page(page, tmp_path, monkeypatch)
    assert ran == sum(block.runs for block in blocks(page))


def test_the_pages_run_something():
    """The setup of each page with Python examples is on the page itself."""
    runnable = {page.name for page in PAGES if any(block.runs for block in blocks(page))}
    assert {"README.md", "experiments.md", "uplift.md", "weights.md", "touches.md"} <= runnable


# ---------------------------------------------------------------- the blocks are well formed


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_block_says_its_language(page):
    for block in blocks(page):
        assert block.lang in KNOWN, f"{block.where}: ```{block.lang} is not one of {KNOWN}"
        if block.marker == "compile-only":
            assert block.lang == "python", block.where
        if block.marker and block.marker.startswith("exit"):
            assert block.lang == "sh", block.where


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_json_documents_parse(page):
    for block in blocks(page):
        if block.lang == "json" and block.code.lstrip()[:1] in "{[":
            try:
                json.loads(block.code)
            except json.JSONDecodeError as exc:
                pytest.fail(f"{block.where}: not valid JSON: {exc}")


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_toml_blocks_are_valid_configuration(page, tmp_path):
    from upshot.config import load_config

    for number, block in enumerate(b for b in blocks(page) if b.lang == "toml"):
        try:
            tomllib.loads(block.code)
        except tomllib.TOMLDecodeError as exc:
            pytest.fail(f"{block.where}: not valid TOML: {exc}")
        path = tmp_path / f"block{number}.toml"
        path.write_text(block.code, encoding="utf-8")
        load_config(path)


def test_the_configuration_reference_is_what_init_writes(tmp_path):
    (block,) = [b for b in blocks(DOCS / "configuration.md") if b.title == "upshot.toml"]
    result = run_cli("init", cwd=tmp_path)
    assert result.code == 0, result.err
    assert block.code == (tmp_path / "upshot.toml").read_text(encoding="utf-8"), (
        "docs/configuration.md's upshot.toml differs from `upshot init`: paste the new one"
    )


# ---------------------------------------------------------------- the site hangs together


def test_the_readme_stays_short():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= 300, f"README.md has {lines} lines; move reference material to docs/"


def nav_pages() -> list[str]:
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))

    def walk(node: object) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, dict):
            return [page for value in node.values() for page in walk(value)]
        if isinstance(node, list):
            return [page for item in node for page in walk(item)]
        return []

    return walk(config["nav"])


def test_every_page_is_in_the_nav():
    nav = nav_pages()
    pages = sorted(page.name for page in DOCS.glob("*.md"))
    assert sorted(set(nav)) == pages, "mkdocs.yml's nav and docs/*.md differ"
    assert len(nav) == len(set(nav)), "a page is twice in the nav"


LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    from markdown.extensions.toc import slugify

    found, fence = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and (heading := re.match(r"#{1,6} (.*)", line)):
            text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(1)).replace("`", "")
            found.add(slugify(text, "-"))
    return found


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_links_to_pages_and_headings_resolve(page):
    text, fence = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence:
            text.append(re.sub(r"`[^`]*`", "", line))
    for target in LINK.findall("\n".join(text)):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page_id(page)}: broken link {target}"
        if page == README and path:
            assert resolved.parent == DOCS.resolve(), f"README links outside docs/: {target}"
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), f"{page_id(page)}: no heading for {target}"


def test_the_blocks_are_found():
    """The parser sees the README's tour and a page's markers."""
    readme = blocks(README)
    assert any(b.marker == "skip" and "upshot simulate" in b.code for b in readme)
    assert any(b.marker == "exit 3" for b in readme)
    assert [b.title for b in readme if b.title] == [
        "sends.csv",
        "outcomes.csv",
        "users.csv",
        "assignments.csv",
    ]
