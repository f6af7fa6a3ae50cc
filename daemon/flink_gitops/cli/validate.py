"""`flink-gitops validate [PATH]`: check a directory of job specs, for CI on pull requests.

Exit 0 when every spec is valid (warnings allowed), 1 when there is any error
(an unreadable file or directory is one), 2 when nothing could be checked (the
spec directory is missing or not a directory, invalid config).
Output: ``path:line:col: error: message`` (text), JSON, or GitHub Actions
annotations (``--output github``). Cluster names are checked against the
config only when ``--config`` is given (CI usually has no daemon config).
Neighbours: ``specs.loader`` (does the work), ``source.tree.DirectoryTree``.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import click

from flink_gitops.cli import settings_from
from flink_gitops.source.tree import DirectoryTree, normalise
from flink_gitops.specs.errors import Problem
from flink_gitops.specs.guards import SpecGuards
from flink_gitops.specs.loader import DesiredJob, DesiredState, SpecLoader


def _shown(root: Path, file: str) -> str:
    return file if str(root) in ("", ".") else os.path.join(str(root), file)


def _gh_escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def github_annotation(problem: Problem, file: str) -> str:
    """One GitHub Actions workflow command (``::error file=...,line=...,col=...::message``)."""
    props = [f"file={_gh_escape(file, prop=True)}"]
    if problem.line is not None:
        props.append(f"line={problem.line}")
        if problem.col is not None:
            props.append(f"col={problem.col}")
    return f"::{problem.severity} {','.join(props)}::{_gh_escape(problem.message)}"


def _summary(state: DesiredState) -> str:
    valid = len(state.valid_jobs())
    invalid = len(state.jobs) - valid + len(state.unnamed)
    return (
        f"{valid} job(s) valid, {invalid} invalid; "
        f"{len(state.errors)} error(s), {len(state.warnings)} warning(s) in {len(state.files)} file(s)"
    )


def as_json(state: DesiredState, root: Path) -> dict[str, object]:
    jobs: dict[str, object] = {}
    for name, job in state.jobs.items():
        entry: dict[str, object] = {
            "valid": isinstance(job, DesiredJob),
            "file": _shown(root, job.file),
            "line": job.line,
        }
        if isinstance(job, DesiredJob):
            entry |= {"kind": job.source_kind, "cluster": job.spec.spec.cluster, "specHash": job.spec_hash}
        jobs[name] = entry
    return {
        "ok": state.ok,
        "jobs": jobs,
        "invalidFiles": sorted(_shown(root, f) for f in state.invalid_files),
        "problems": [
            {
                "file": _shown(root, p.file),
                "line": p.line,
                "col": p.col,
                "severity": p.severity,
                "message": p.message,
                "job": p.job,
            }
            for p in state.problems
        ],
    }


def _check_spec_dir(root: Path, spec_dir: str, source: str) -> None:
    """A usage error unless ``spec_dir`` is a real directory inside ``root`` (as a commit would have it)."""
    rel = normalise(spec_dir)
    shown = repr(spec_dir) if len(spec_dir) <= 80 else repr(spec_dir[:80]) + "…"
    if rel is None:
        raise click.BadParameter(f"{shown} leaves {root}", param_hint=source)
    if not rel:
        return
    try:
        st = os.lstat(root / rel)
    except OSError as exc:
        why = "does not exist" if exc.errno == errno.ENOENT else f"cannot be looked at ({exc.strerror})"
    else:
        if stat.S_ISDIR(st.st_mode):
            return  # an unreadable one is reported by the load, with every other problem
        kind = (
            "a symlink (a commit would not walk through it)"
            if stat.S_ISLNK(st.st_mode)
            else "not a directory"
        )
        why = f"is {kind}"
    raise click.BadParameter(f"{shown} {why} in {root}", param_hint=source)


@click.command()
@click.argument("path", default=".", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--dir", "spec_dir", default=None, help="Spec directory inside PATH. Default: the config's git.path (.)."
)
@click.option(
    "--output",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="Report format.",
)
@click.pass_context
def validate(ctx: click.Context, path: Path, spec_dir: str | None, output: str) -> None:
    """Validate the job specs under PATH (a checkout or any directory with specs).

    Exit status: 0 valid (warnings allowed), 1 errors found, 2 nothing checked (bad --dir, config).
    """
    settings = settings_from(ctx)
    explicit_config = ctx.find_root().params.get("config") is not None
    directory = spec_dir if spec_dir is not None else settings.git.path
    _check_spec_dir(path, directory, "--dir" if spec_dir is not None else "git.path")
    loader = SpecLoader(
        directory,
        limits=settings.spec_limits,
        artifact_roots=settings.artifact_roots,
        clusters=set(settings.clusters) if explicit_config else None,
        guards=SpecGuards.from_settings(settings),
    )
    state = loader.load(DirectoryTree(path))
    if output == "json":
        click.echo(json.dumps(as_json(state, path), indent=2))
    elif output == "github":
        for p in state.problems:
            click.echo(github_annotation(p, _shown(path, p.file)))
        click.echo(_summary(state))
    else:
        for p in state.problems:
            click.echo(f"{_shown(path, p.where())}: {p.severity}: {p.message}")
        click.echo(_summary(state))
    ctx.exit(0 if state.ok else 1)
