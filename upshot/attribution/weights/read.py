"""The reference reader of weight files: what a decision service embeds.

A weights directory holds, per published version, `<version>.json` (the contract, see
`upshot weights schema`) and `<version>.parquet` (per-segment weights), plus:

- `manifest.json`: every kept version with the sha256 and size of each of its files and
  its provenance, oldest first;
- `latest.json`: the version to serve, with the sha256 of its files.

Writers replace files only by atomic rename, so a reader sees either the old or the new
state of each file. `read` trusts nothing it cannot verify: it refuses (RefusedError, exit
5) a file whose checksum does not match, that is not valid JSON, or that breaks the schema.

    from upshot import read_weights
    weights = read_weights("weights")                 # the latest version
    by_class = {c["message_class"]: c["weight"] for c in weights["classes"]}
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from upshot.errors import RefusedError, UsageError

if TYPE_CHECKING:
    import polars as pl

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
LATEST = "latest.json"
VERSION_RE = re.compile(r"^(?!(latest|manifest)$)[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")


def schema() -> dict[str, Any]:
    """The JSON Schema of a weights file (shipped as `upshot/schemas/weights.schema.json`)."""
    return json.loads(schema_text())


@cache
def schema_text() -> str:
    """The JSON Schema as shipped, byte for byte."""
    path = resources.files("upshot").joinpath("schemas/weights.schema.json")
    return path.read_text(encoding="utf-8")


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_document(document: Any, where: str) -> None:
    """Refuse a document that breaks the schema, naming the first offending field."""
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        field = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise RefusedError(f"{where}: schema violation at {field}: {first.message}")


def read_json(path: Path, expected_sha256: str | None = None) -> Any:
    """A JSON file's content, refused when its bytes do not match `expected_sha256`."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RefusedError(f"{path}: missing") from None
    if expected_sha256 is not None and sha256(data) != expected_sha256:
        raise RefusedError(f"{path}: sha256 does not match the manifest (tampered or partial)")
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RefusedError(f"{path}: not valid JSON ({exc})") from None


def read_manifest(directory: Path) -> dict[str, Any]:
    """`manifest.json` of `directory`; an empty manifest when there is none yet."""
    path = directory / MANIFEST
    if not path.exists():
        return {"manifest_version": 1, "versions": []}
    manifest = read_json(path)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("versions"), list):
        raise RefusedError(f"{path}: not an upshot weights manifest")
    return manifest


def manifest_entry(manifest: dict[str, Any], version: str) -> dict[str, Any] | None:
    return next((e for e in manifest["versions"] if e.get("weights_version") == version), None)


def read_latest(directory: Path) -> dict[str, Any] | None:
    """The pointer in `latest.json`, or None when nothing was published yet."""
    path = directory / LATEST
    if not path.exists():
        return None
    latest = read_json(path)
    if not isinstance(latest, dict) or not VERSION_RE.match(str(latest.get("weights_version"))):
        raise RefusedError(f"{path}: not an upshot latest pointer")
    return latest


def locate(path: str | Path) -> tuple[Path, str]:
    """The directory and version that `path` names: a directory (its latest version),
    its `latest.json`, or a `<version>.json` file."""
    path = Path(path)
    if path.is_dir() or path.name == LATEST:
        directory = path if path.is_dir() else path.parent
        latest = read_latest(directory)
        if latest is None:
            raise UsageError(f"{directory}: no weights published here yet (no {LATEST})")
        return directory, str(latest["weights_version"])
    if path.suffix != ".json" or not VERSION_RE.match(path.stem):
        raise UsageError(f"{path}: not a weights directory, {LATEST} or <version>.json")
    return path.parent, path.stem


def read(path: str | Path) -> dict[str, Any]:
    """The verified document of one weights version.

    `path` is a weights directory or its `latest.json` (the version being served) or a
    `<version>.json`. The file's sha256 must match both the manifest and, when reached
    through it, `latest.json`; the JSON must validate against the schema and name itself.
    """
    directory, version = locate(path)
    entry = _entry(directory, version)
    name = f"{version}.json"
    expected = entry["files"].get(name, {}).get("sha256")
    if expected is None:
        raise RefusedError(f"{directory / MANIFEST}: version {version} lists no {name}")
    latest = read_latest(directory) if Path(path).is_dir() or Path(path).name == LATEST else None
    if latest is not None:
        check_pointer(directory, latest, entry)
    document = read_json(directory / name, expected)
    check_document(document, str(directory / name))
    if document["weights_version"] != version:
        raise RefusedError(
            f"{directory / name}: names itself {document['weights_version']!r}, not {version!r}"
        )
    return document


def check_pointer(directory: Path, latest: dict[str, Any], entry: dict[str, Any]) -> None:
    """Refuse a `latest.json` whose `file` or `segments_file` is not a file of its version
    that the manifest lists (`../upshot.toml`, `/etc/passwd`), or whose checksums disagree
    with the manifest's: a decision service may follow these names."""
    version = latest.get("weights_version")
    for key, sha_key in (("file", "sha256"), ("segments_file", "segments_sha256")):
        name = latest.get(key)
        if not _listed(name, entry):
            raise RefusedError(
                f"{directory / LATEST}: {key} {name!r} is not a file of version {version} "
                f"listed in {MANIFEST}"
            )
        if latest.get(sha_key) != entry["files"][name].get("sha256"):
            raise RefusedError(
                f"{directory / LATEST}: sha256 of {name} disagrees with the manifest"
            )
    if latest.get("file") != f"{version}.json":
        raise RefusedError(
            f"{directory / LATEST}: file {latest.get('file')!r} is not a file of version "
            f"{version} listed in {MANIFEST}"
        )


def _listed(name: Any, entry: dict[str, Any]) -> bool:
    """A plain file name (no folder, nothing to climb out with) that the entry lists."""
    return (
        isinstance(name, str)
        and Path(name).name == name
        and name not in ("", ".", "..", MANIFEST, LATEST)
        and name in entry["files"]
    )


def read_segments(path: str | Path) -> pl.DataFrame:
    """The verified per-segment weights of the version `path` names."""
    import io

    import polars as pl

    document = read(path)
    directory, version = locate(path)
    name = document["segments"]["file"]
    entry = _entry(directory, version)
    if not _listed(name, entry):
        raise RefusedError(
            f"{directory / version}.json: segments file {name!r} is not a file of version "
            f"{version} listed in {MANIFEST}"
        )
    expected = entry["files"][name].get("sha256")
    try:
        data = (directory / name).read_bytes()
    except FileNotFoundError:
        raise RefusedError(f"{directory / name}: missing") from None
    if expected is None or sha256(data) != expected:
        raise RefusedError(f"{directory / name}: sha256 does not match the manifest")
    return pl.read_parquet(io.BytesIO(data))


def verify(directory: str | Path, version: str) -> list[str]:
    """Every file of `version` checked against the manifest: the names that passed."""
    directory = Path(directory)
    entry = _entry(directory, version)
    read(directory / f"{version}.json")
    for name, meta in sorted(entry["files"].items()):
        try:
            data = (directory / name).read_bytes()
        except FileNotFoundError:
            raise RefusedError(f"{directory / name}: missing") from None
        if sha256(data) != meta.get("sha256"):
            raise RefusedError(f"{directory / name}: sha256 does not match the manifest")
    return sorted(entry["files"])


def orphans(directory: str | Path) -> list[str]:
    """Files named like a version's (`*.json`, `*.parquet`) that no kept version lists:
    left by an interrupted export, or put there by someone else."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    listed = {n for e in read_manifest(directory)["versions"] for n in e.get("files", {})}
    return sorted(
        p.name
        for p in directory.iterdir()
        if p.suffix in (".json", ".parquet")
        and p.name not in listed | {MANIFEST, LATEST}
        and p.is_file()
    )


def _entry(directory: Path, version: str) -> dict[str, Any]:
    if not (directory / MANIFEST).exists():
        raise RefusedError(f"{directory}: no {MANIFEST}, so nothing here can be verified")
    entry = manifest_entry(read_manifest(directory), version)
    if entry is None or not isinstance(entry.get("files"), dict):
        raise RefusedError(f"{directory / MANIFEST}: no version {version}")
    return entry
