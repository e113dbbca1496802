"""Writing reports/<week>/: every file, swapped in whole, the same bytes from the same data."""

from __future__ import annotations

import json

from tests.reports.conftest import WEEK, uid
from upshot.config import Config
from upshot.reports.weekly import build, replace_folder


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_build_writes_every_file_and_rebuilds_identically(warehouse, tmp_path):
    config = Config()
    first = build(warehouse, config, WEEK, directory=tmp_path / "r", weights_dir=tmp_path / "w")
    folder = tmp_path / "r" / WEEK
    assert first.directory == folder
    files = set(first.files)
    assert {"index.html", "summary.md", "alerts.json", "provenance.json"} <= files
    charts = {f for f in files if f.startswith("charts/")}
    assert charts
    for f in charts:
        stem = f.rsplit(".", 1)[0]
        assert f"{stem}.png" in files
        assert f"{stem}.svg" in files
    alerts = json.loads((folder / "alerts.json").read_text())
    assert alerts["week"] == WEEK
    assert set(alerts["counts"]) == {"critical", "warning", "info"}
    before = _snapshot(folder)
    (folder / "stale.txt").write_text("from an older report")
    build(warehouse, config, WEEK, directory=tmp_path / "r", weights_dir=tmp_path / "w")
    after = _snapshot(folder)
    assert after == before  # the same bytes, and nothing left of the previous folder
    # no temporary folders are left behind
    assert [p.name for p in (tmp_path / "r").iterdir()] == [WEEK]
    text = b"".join(after.values())
    assert b"user_id" not in text
    assert not any(uid(i).encode() in text for i in range(30))


def test_replace_folder_swaps_in_place(tmp_path):
    target, new = tmp_path / "week", tmp_path / ".week.tmp"
    target.mkdir()
    (target / "old.txt").write_text("old")
    new.mkdir()
    (new / "new.txt").write_text("new")
    replace_folder(new, target)
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in new.iterdir()] == ["old.txt"]  # for the caller to delete
    fresh = tmp_path / ".fresh.tmp"
    fresh.mkdir()
    (fresh / "a").write_text("a")
    replace_folder(fresh, tmp_path / "other")
    assert (tmp_path / "other" / "a").read_text() == "a"
