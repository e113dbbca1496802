"""`upshot weights`: export, show, diff, validate, evaluate, schema."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from upshot.cli.common import info, state
from upshot.cli.output import Format, FormatOption, JsonOption, emit, resolve
from upshot.errors import RefusedError, UsageError

if TYPE_CHECKING:
    from upshot.attribution.weights.ope import Evaluation, Policy
    from upshot.attribution.weights.policy import Drift
    from upshot.config import Config

group = typer.Typer(
    name="weights",
    help=(
        "Value weights for the decision services: export, inspect and evaluate them.\n\n"
        "A weight is the value of sending one message of a class, in value units per send: "
        "Σ rate × uplift over the objectives, with the exchange rates, guardrails, caps and "
        "shrinkage of [governance] in upshot.toml. Versions are published under "
        "the weights directory as VERSION.json (schema: upshot weights schema), "
        "VERSION.parquet (per segment), manifest.json (checksums, provenance) and "
        "latest.json (the version to serve)."
    ),
    no_args_is_help=True,
)


class PolicyChoice(StrEnum):
    positive = "positive"
    rank = "rank"


DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="The weights directory. Default: governance.directory in upshot.toml (weights).",
        show_default=False,
    ),
]
RunOption = Annotated[
    str | None,
    typer.Option("--run-id", help="The uplift run to use. Default: the newest finished one."),
]
PolicyOption = Annotated[
    PolicyChoice | None,
    typer.Option(
        "--policy",
        help="Candidate policy for the off-policy estimate: positive sends every "
        "decision whose class weight is > 0; rank sends the --cap highest-weighted "
        "positive ones per user and ISO week. Default: governance.ope_policy.",
        show_default=False,
    ),
]
CapOption = Annotated[
    int | None,
    typer.Option("--cap", min=1, help="Sends per user and week under --policy rank."),
]


def _policy(choice: PolicyChoice | None) -> Policy | None:
    return None if choice is None else choice.value


def _directory(config: Config, given: Path | None) -> Path:
    return given if given is not None else Path(config.governance.directory)


def _target(directory: Path, given: str | None) -> Path:
    """A path to a weights directory, latest.json or <version>.json, or a version name."""
    from upshot.attribution.weights.read import VERSION_RE

    if given is None:
        return directory
    if Path(given).exists():
        return Path(given)
    if VERSION_RE.match(given):
        return directory / f"{given}.json"
    raise UsageError(f"{given}: no such file, and not a version name in {directory}")


def export(
    ctx: typer.Context,
    run_id: RunOption = None,
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            help="Version id (the file name). Default: the estimates' date and a hash of the "
            "content, so identical inputs give the identical version and bytes.",
            show_default=False,
        ),
    ] = None,
    directory: DirOption = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Show the weights, the diff and the off-policy estimate without writing "
            "anything; exit 5 if the circuit breaker would refuse.",
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Publish even when the circuit breaker trips (or the published version fails "
            "verification); recorded in the manifest and the warehouse journal.",
        ),
    ] = False,
    evaluate: Annotated[
        bool,
        typer.Option("--evaluate/--no-evaluate", help="Make the off-policy estimate."),
    ] = True,
    policy: PolicyOption = None,
    cap: CapOption = None,
    fmt: FormatOption = Format.table,
    as_json: JsonOption = False,
) -> None:
    """Compute the value weights of an uplift run and publish them as a new version.

    Per class (and segment): value = Σ rate × uplift with a CI from the joint covariance
    of the objective estimates, shrunk toward the channel mean (empirical Bayes). Classes
    whose opt-out uplift's upper CI bound exceeds max_optout_harm, whose refutation failed,
    or with too few decisions get no positive weight; the reason is in the file. For each
    class blocked by the opt-out guardrail it prints the decisions it would need to clear
    it if its estimate held (optout_clearance in --json). The new
    weights are compared with the published ones: when more than drift_max_share of the
    classes move by more than drift_threshold, the circuit breaker refuses (exit 5) unless
    --force. Files are written atomically and latest.json is switched last, so a killed
    export never leaves a reader on a partial file.

    Example:

    \b
      upshot weights export --check --json
    """
    from upshot.attribution.weights.clearance import optout_clearance
    from upshot.attribution.weights.export import export as run_export

    st = state(ctx)
    info("computing weights from the uplift estimates ...")
    out = run_export(
        st.config,
        st.db_path,
        run_id=run_id,
        version=version,
        directory=_directory(st.config, directory),
        check=check,
        force=force,
        evaluate=evaluate,
        policy=_policy(policy),
        cap=cap,
    )
    cand, published = out.candidate, out.published
    blocked = optout_clearance(cand.weights, st.config.governance)
    document = {
        "weights_version": cand.version,
        "uplift_run_id": cand.inputs.run_id,
        "directory": str(out.directory),
        "check": check,
        "published": published is not None,
        "changed": bool(published and published.changed),
        "path": str(published.path) if published else None,
        "sha256": published.sha256 if published else None,
        "pruned": list(published.pruned) if published else [],
        "forced": out.forced,
        "refused": out.refused,
        "breaker": out.drift.summary(),
        "classes": cand.weights.to_dicts(),
        "diff": out.drift.to_dicts(),
        "evaluation": _evaluation_document(out.evaluation),
        "optout_clearance": blocked.to_dicts(),
    }
    tables = {"classes": cand.weights.to_dicts(), **_drift_table(out.drift)}
    if blocked.rows:
        tables["blocked by the opt-out guardrail: decisions to clear it"] = blocked.to_dicts()
    tables.update(_evaluation_table(out.evaluation))
    emit(resolve(fmt, as_json), document, tables, main="classes")
    if out.drift.tripped and not force:
        verdict = "would refuse" if check else "refused"
        raise RefusedError(
            f"circuit breaker {verdict}: {_breaker_line(out.drift)}; rerun with --force to publish"
        )
    if published is not None:
        what = "published" if published.changed else "already published"
        info(f"{what} {published.path} (latest.json → {published.weights_version})")


def _breaker_line(d: Drift) -> str:
    return (
        f"{d.n_moved} of {d.n_compared} classes ({d.share_moved:.0%}) moved by more than "
        f"{d.threshold:.0%} since {d.previous_version}; the limit is {d.max_share:.0%}"
    )


def _evaluation_document(evaluation: Evaluation | None) -> dict[str, Any] | None:
    from upshot.attribution.weights.export import evaluation_document

    return None if evaluation is None else evaluation_document(evaluation)


def _drift_table(drift: Drift) -> dict[str, list[dict[str, Any]]]:
    if not drift.previous_version:
        return {}
    title = f"diff vs {drift.previous_version} ({drift.n_moved}/{drift.n_compared} moved)"
    return {title: drift.to_dicts()}


EVALUATION_FIELDS = (
    "objective",
    "estimator",
    "policy_value",
    "logged_value",
    "effect",
    "effect_ci_lower",
    "effect_ci_upper",
    "rel_effect",
    "n",
)


def _evaluation_table(evaluation: Evaluation | None) -> dict[str, list[dict[str, Any]]]:
    if evaluation is None:
        return {}
    window = evaluation.window or {}
    span = f"{window.get('start')} to {window.get('end')}, {evaluation.split}"
    if evaluation.status != "ok":
        title = f"off-policy estimate ({evaluation.policy}, {span}): {evaluation.status}"
        return {title: [{"reason": evaluation.reason}]}
    title = f"off-policy estimate ({evaluation.policy}, {span}), per decision"
    return {title: [{k: row[k] for k in EVALUATION_FIELDS} for row in evaluation.to_dicts()]}


def show(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Argument(help="A version, a VERSION.json, or a directory. Default: the latest."),
    ] = None,
    directory: DirOption = None,
    segments: Annotated[
        bool, typer.Option("--segments", help="Show the per-segment weights instead.")
    ] = False,
    fmt: FormatOption = Format.table,
    as_json: JsonOption = False,
) -> None:
    """Show a published weights version, verified like a decision service would read it.

    --json prints the weights file itself (after its checksum and schema checks);
    with --segments, the per-segment rows of its Parquet file.
    """
    from upshot.attribution.weights.read import locate, read, read_segments, verify

    path = _target(_directory(state(ctx).config, directory), target)
    document = read(path)
    verify(*locate(path))  # an incomplete version (its Parquet missing) is refused, exit 5
    if segments:
        rows = read_segments(path).to_dicts()
        body = {"weights_version": document["weights_version"], "segments": rows}
        emit(resolve(fmt, as_json), body, {"segments": rows}, main="segments")
        return
    classes = [
        {k: v for k, v in c.items() if k not in ("components",) and "raw_ci" not in k}
        for c in document["classes"]
    ]
    head = [
        {"field": k, "value": v if not isinstance(v, dict) else json.dumps(v)}
        for k, v in document.items()
        if k in ("weights_version", "generated_at", "window", "source")
    ]
    policy = document["policy"]
    head.append({"field": "policy", "value": f"{policy['version']} ({policy['hash'][:12]})"})
    emit(resolve(fmt, as_json), document, {"weights": head, "classes": classes}, main="classes")


def diff(
    ctx: typer.Context,
    old: Annotated[
        str | None, typer.Argument(help="The older version. Default: the one before the latest.")
    ] = None,
    new: Annotated[str | None, typer.Argument(help="The newer version. Default: latest.")] = None,
    directory: DirOption = None,
    fmt: FormatOption = Format.table,
    as_json: JsonOption = False,
) -> None:
    """Compare the class weights of two versions, as the circuit breaker does.

    A class has moved when |new - old| exceeds drift_threshold times the larger of |old|
    and the median |old| of the compared classes; the breaker trips when more than
    drift_max_share of them moved. Exit 0 either way: this only reports.
    """
    from upshot.attribution.weights.policy import drift
    from upshot.attribution.weights.read import read, read_manifest

    governance = state(ctx).config.governance
    folder = _directory(state(ctx).config, directory)
    if old is None:
        versions = [e["weights_version"] for e in read_manifest(folder)["versions"]]
        latest = read(folder)["weights_version"] if new is None else new
        earlier = versions[: versions.index(latest)] if latest in versions else versions[:-1]
        if not earlier:
            raise UsageError(f"{folder}: no version before {latest} to compare with")
        old = earlier[-1]
    before = read(_target(folder, old))
    after = read(_target(folder, new))
    moved = drift(
        {c["message_class"]: c["weight"] for c in before["classes"]},
        {c["message_class"]: c["weight"] for c in after["classes"]},
        threshold=governance.drift_threshold,
        max_share=governance.drift_max_share,
        previous_version=before["weights_version"],
    )
    document = {
        "from": before["weights_version"],
        "to": after["weights_version"],
        "breaker": moved.summary(),
        "diff": moved.to_dicts(),
    }
    title = f"{before['weights_version']} → {after['weights_version']}"
    emit(resolve(fmt, as_json), document, {title: moved.to_dicts()}, main=title)
    info(_breaker_line(moved) + (" (would trip)" if moved.tripped else ""))


def validate(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Argument(help="A version or VERSION.json. Default: every version kept."),
    ] = None,
    directory: DirOption = None,
    fmt: FormatOption = Format.table,
    as_json: JsonOption = False,
) -> None:
    """Verify weight files as a decision service would; exit 5 when anything fails.

    Checks every file's sha256 against manifest.json, each version's JSON against the
    schema, and that latest.json points at a complete version through files the manifest
    lists. Files that belong to no version are listed (`orphans`) without failing.
    """
    from upshot.attribution.weights.read import LATEST, MANIFEST, locate, orphans, read_manifest

    folder = _directory(state(ctx).config, directory)
    if target is not None:
        folder, only = locate(_target(folder, target))
        versions = [only]
    else:
        versions = [e["weights_version"] for e in read_manifest(folder)["versions"]]
        if not versions and _holds_weights(folder):
            raise RefusedError(
                f"{folder / MANIFEST} is missing but {folder} holds weight files; "
                "nothing here can be verified"
            )
        if not versions:
            raise UsageError(f"{folder}: no weights published here yet")
    rows = [_check(v, partial(_files, folder, v)) for v in versions]
    if target is None:
        rows.append(_check(LATEST, partial(_latest, folder)))
    ok = all(r["ok"] for r in rows)
    stray = orphans(folder) if target is None else []
    document = {"directory": str(folder), "ok": ok, "versions": rows, "orphans": stray}
    emit(resolve(fmt, as_json), document, {"versions": rows}, main="versions")
    if stray:
        info(
            f"{len(stray)} file(s) belong to no version: {', '.join(stray)} (left by an "
            "interrupted export, or not upshot's; the next export removes those it wrote)"
        )
    if not ok:
        raise RefusedError(f"{sum(not r['ok'] for r in rows)} of {len(rows)} checks failed")


def _holds_weights(folder: Path) -> bool:
    from upshot.attribution.weights.read import LATEST, VERSION_RE

    return folder.is_dir() and any(
        p.name == LATEST or (p.suffix in (".json", ".parquet") and VERSION_RE.match(p.stem))
        for p in folder.iterdir()
    )


def _latest(folder: Path) -> str:
    """The served version: latest.json present, pointing at listed files, complete."""
    from upshot.attribution.weights.read import LATEST, MANIFEST, read

    if not (folder / LATEST).exists():
        raise RefusedError(f"{folder / LATEST}: missing, though {MANIFEST} lists versions")
    return str(read(folder)["weights_version"])


def _files(folder: Path, version: str) -> str:
    from upshot.attribution.weights.read import verify

    return ", ".join(verify(folder, version))


def _check(name: str, run: Callable[[], str]) -> dict[str, Any]:
    try:
        return {"weights_version": name, "ok": True, "files": run(), "error": None}
    except RefusedError as exc:
        return {"weights_version": name, "ok": False, "files": "", "error": str(exc)}


def evaluate(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Argument(
            help="Published weights to evaluate (a version, file or directory). Default: the "
            "candidate weights of the uplift run, as `export` would publish them.",
        ),
    ] = None,
    run_id: RunOption = None,
    directory: DirOption = None,
    policy: PolicyOption = None,
    cap: CapOption = None,
    start: Annotated[
        str | None, typer.Option("--start", help="First decision day (default: the window).")
    ] = None,
    end: Annotated[str | None, typer.Option("--end", help="Day after the last decision.")] = None,
    fmt: FormatOption = Format.table,
    as_json: JsonOption = False,
) -> None:
    """Estimate what sending by the weights would have done, on the logged decisions.

    Off-policy evaluation against the logged policy with inverse propensity scoring (IPS),
    self-normalised IPS and doubly robust (a cross-fitted ridge outcome model per class
    and arm). Each gives the policy's value and its difference from what was logged, with
    a CI of level 1 - governance.alpha, per objective and in value units per decision.
    Needs logged propensities;
    decisions without one are left out and counted. By default it evaluates on the
    decisions of the window right after the estimates' (split next_window), never on the
    ones the uplift was estimated from; status not_evaluated when there are none yet.
    """
    from upshot import store
    from upshot.attribution.weights import export as lib
    from upshot.attribution.weights.read import read
    from upshot.period import Period, parse

    st = state(ctx)
    asked = parse(None, start, end)  # --start after --end is a usage error before any work
    with store.reading(st.config, st.db_path) as con:
        if target is None:
            subject = lib.candidate_subject(
                lib.candidate(lib.load_run(con, run_id=run_id), st.config)
            )
        else:
            subject = lib.document_subject(read(_target(_directory(st.config, directory), target)))
        after = lib.next_window(subject.window)
        window = Period(asked.start or after.start, asked.end or after.end)
        if window.start and window.end and window.start >= window.end:
            raise UsageError(
                f"--start/--end: the window {window.start:%Y-%m-%d} to {window.end:%Y-%m-%d} "
                "is empty (the default start or end is the window after the weights' own)"
            )
        same = (window.start, window.end) == (after.start, after.end)
        split = "next_window" if same else lib.split_of(window, subject.window)
        if split == "in_sample":
            info(
                "warning: this window overlaps the decisions the uplift was estimated on; "
                "the estimate is optimistic (split in_sample)"
            )
        info(f"evaluating {subject.version} on the logged decisions ...")
        result = lib.evaluate_policy(
            con,
            st.config,
            subject.weights,
            subject.rates,
            window,
            policy=_policy(policy),
            cap=cap,
            split=split,
        )
    if result is None:
        raise UsageError("nothing to evaluate: no class, or no rated objective is configured")
    document = {
        "weights_version": subject.version,
        "candidate": target is None,
        **lib.evaluation_document(result),
    }
    rows = result.to_dicts()
    emit(resolve(fmt, as_json), document, {"estimates": rows}, main="estimates")
    info(
        ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in result.summary().items()
        )
    )


def schema() -> None:
    """Print the JSON Schema of a weights file: the contract with the decision services.

    JSON Schema draft 2020-12. Every exported file is checked against it before it is
    written, and upshot.read_weights checks it again when a service loads one.
    """
    from upshot.attribution.weights.read import schema_text

    sys.stdout.write(schema_text())


def register(app: typer.Typer) -> None:
    group.command("export")(export)
    group.command("show")(show)
    group.command("diff")(diff)
    group.command("validate")(validate)
    group.command("evaluate")(evaluate)
    group.command("schema")(schema)
    app.add_typer(group, name="weights")
