"""Publishing weight files: atomic writes, the manifest, `latest.json` and retention.

The order of the steps is what makes a killed export harmless:

0. the new file names added to the manifest's `files_written` (same way as below);
1. `<version>.parquet`, then `<version>.json`: each written to a temporary file in the same
   directory, fsynced, renamed over its name, and the directory fsynced;
2. `manifest.json` with the new version's checksums and provenance (same way);
3. `latest.json` switched to the new version (same way): the moment of publication;
4. versions beyond `keep` pruned from the manifest, then their files deleted.

A kill before step 3 leaves `latest.json` on the previous version, whose files and manifest
entry are untouched; a kill after it leaves the new version complete. Leftover temporary
and orphaned files are removed by the next export. Only files the manifest once listed are
ever deleted (step 0 is what lets a killed export's files be recognised), and a directory
that holds anything else is refused unless it is already a weights directory, so
`--dir .` cannot delete input data. One exporter at a time per directory
(`.lock`). A version is immutable: republishing identical bytes is a no-op, different bytes
under an existing version are refused.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from upshot.attribution.weights.read import (
    LATEST,
    MANIFEST,
    VERSION_RE,
    check_document,
    manifest_entry,
    read_latest,
    read_manifest,
    sha256,
)
from upshot.errors import RefusedError, UsageError
from upshot.results import jsonable
from upshot.store import file_lock

LOCK = ".lock"


@dataclass(frozen=True, slots=True)
class Published:
    """What `publish` did: `changed` is False when the version was already there as is."""

    weights_version: str
    path: Path
    segments_path: Path
    sha256: str
    changed: bool
    pruned: tuple[str, ...]


def render(document: Mapping[str, Any]) -> bytes:
    """Canonical JSON bytes: NaN as null, fixed key order, indented, newline-terminated."""
    text = json.dumps(jsonable(dict(document)), indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def segments_parquet(rows: Sequence[Mapping[str, Any]], objectives: Sequence[str]) -> bytes:
    """Per-segment weights as Parquet bytes, with a fixed schema even when there are none.

    Written with polars, not pyarrow: pyarrow's Parquet reader intermittently aborts the
    interpreter at exit ("terminate called without an active exception") in this stack.
    """
    import polars as pl

    schema = {
        "message_class": pl.String,
        "channel": pl.String,
        "segment": pl.String,
        "weight": pl.Float64,
        "value": pl.Float64,
        "value_ci_lower": pl.Float64,
        "value_ci_upper": pl.Float64,
        "value_raw": pl.Float64,
        "shrinkage": pl.Float64,
        "status": pl.String,
        "reason": pl.String,
        "n_treated": pl.Int64,
        "n_control": pl.Int64,
        **{f"uplift_{k}": pl.Float64 for k in objectives},
    }
    columns = {name: [row.get(name) for row in rows] for name in schema}
    buffer = io.BytesIO()
    pl.DataFrame(columns, schema=schema).write_parquet(buffer, compression="zstd")
    return buffer.getvalue()


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that readers see the old bytes or the new, never a mix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    # the rename is durable only once the directory entry is
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def directory_lock(directory: Path, timeout: float) -> Iterator[None]:
    """One exporter at a time per weights directory."""
    with file_lock(directory / LOCK, timeout, str(directory), "upshot weights export"):
        yield


def publish(
    directory: str | Path,
    document: Mapping[str, Any],
    segments: bytes,
    *,
    entry: Mapping[str, Any],
    keep: int,
    lock_timeout: float = 30.0,
) -> Published:
    """Write one version (`document` plus its `segments` Parquet bytes) and switch
    `latest.json` to it. `entry` is the manifest's provenance for it (its `files` are
    filled in here). Keeps the newest `keep` versions."""
    if keep < 1:
        raise UsageError(f"keep == {keep}, must be >= 1")
    version = str(document.get("weights_version"))
    if not VERSION_RE.match(version):
        raise UsageError(f"weights_version == {version!r}, must be a plain file name")
    body = render(document)
    check_document(json.loads(body), f"{version}.json")
    directory = Path(directory)
    _refuse_foreign(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_name, parquet_name = f"{version}.json", f"{version}.parquet"
    files: dict[str, dict[str, Any]] = {
        json_name: {"sha256": sha256(body), "bytes": len(body)},
        parquet_name: {"sha256": sha256(segments), "bytes": len(segments)},
    }
    with directory_lock(directory, lock_timeout):
        _remove_temporaries(directory)
        manifest = read_manifest(directory)
        existing = manifest_entry(manifest, version)
        if existing is not None and existing.get("files") != files:
            raise RefusedError(
                f"{directory / json_name}: version {version} is already published with other "
                "content; versions are immutable, choose another --version"
            )
        if existing is None:
            manifest = _note_written(directory, manifest, files)
        changed = existing is None or not _intact(directory, files)
        if changed:
            atomic_write(directory / parquet_name, segments)
            atomic_write(directory / json_name, body)
        if existing is None:
            added = {"weights_version": version, "files": files, **dict(entry)}
            manifest = {**manifest, "versions": [*manifest["versions"], added]}
            atomic_write(directory / MANIFEST, render(manifest))
        latest = {
            "weights_version": version,
            "file": json_name,
            "sha256": files[json_name]["sha256"],
            "segments_file": parquet_name,
            "segments_sha256": files[parquet_name]["sha256"],
        }
        if read_latest(directory) != latest:
            atomic_write(directory / LATEST, render(latest))
            changed = True
        pruned = _prune(directory, manifest, keep, version)
    sha = files[json_name]["sha256"]
    return Published(version, directory / json_name, directory / parquet_name, sha, changed, pruned)


def _intact(directory: Path, files: Mapping[str, Mapping[str, Any]]) -> bool:
    for name, meta in files.items():
        path = directory / name
        if not path.exists() or sha256(path.read_bytes()) != meta["sha256"]:
            return False
    return True


def _refuse_foreign(directory: Path) -> None:
    """Refuse a directory that holds files not upshot's, unless it is a weights directory."""
    if not directory.is_dir() or (directory / MANIFEST).exists():
        return
    foreign = sorted(
        p.name for p in directory.iterdir() if p.name != LOCK and not _is_temporary(p.name)
    )
    if foreign:
        shown = ", ".join(foreign[:3]) + (
            f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        )
        raise UsageError(
            f"{directory}: not empty and not a weights directory (no {MANIFEST}); it holds "
            f"{shown}; choose an empty or new directory for --dir"
        )


def _is_temporary(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def _note_written(
    directory: Path, manifest: dict[str, Any], files: Mapping[str, Any]
) -> dict[str, Any]:
    """Record the names about to be written, so that a kill leaves only files the manifest
    lists; names whose files are gone are dropped, which keeps the list short."""
    referenced = {name for e in manifest["versions"] for name in e.get("files", {})}
    before = _written(manifest)
    kept = {n for n in before if n in referenced or (directory / n).exists()}
    names = sorted(kept | set(files))
    if names != before:
        manifest = {**manifest, "files_written": names}
        atomic_write(directory / MANIFEST, render(manifest))
    return manifest


def _written(manifest: Mapping[str, Any]) -> list[str]:
    names = manifest.get("files_written", [])
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def _prune(directory: Path, manifest: dict[str, Any], keep: int, current: str) -> tuple[str, ...]:
    versions = manifest["versions"]
    kept = versions[-keep:]
    if not any(e["weights_version"] == current for e in kept):
        kept = [*kept[1:], next(e for e in versions if e["weights_version"] == current)]
    pruned = tuple(e["weights_version"] for e in versions if e not in kept)
    if pruned:
        atomic_write(directory / MANIFEST, render({**manifest, "versions": kept}))
    referenced = {name for e in kept for name in e["files"]}
    # only names this directory's exports wrote: a file upshot never wrote is never deleted
    listed = set(_written(manifest)) | {n for e in versions for n in e.get("files", {})}
    for name in sorted(listed - referenced - {MANIFEST, LATEST, LOCK}):
        if Path(name).name == name and VERSION_RE.match(name.rpartition(".")[0]):
            (directory / name).unlink(missing_ok=True)
    return pruned


def _remove_temporaries(directory: Path) -> None:
    # only exporters write here and we hold the lock, so any temporary is a dead export's
    for path in directory.glob(".*.tmp"):
        path.unlink(missing_ok=True)
