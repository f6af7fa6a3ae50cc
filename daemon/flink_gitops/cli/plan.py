"""`flink-gitops plan --repo PATH --base REF --head REF`: what a revision (a pull request) would change.

Per job: added, removed, changed (with the change class and every changed
field), unchanged, invalid (left as is) — as plain text, Markdown to paste as
a PR comment, or JSON. Git-only for now; the live-cluster plan comes later.
Every error of the head revision is reported too, also those no job carries (a file
too large, a YAML bomb, a refused tag, a symlink out of the repo), with ``new`` when
the base revision did not have it. Exit status: 0 the head has no errors, 1 it has
(the daemon would leave the jobs concerned as they are), 2 no plan could be made
(unknown ref, not a repository, invalid config).
Neighbours: ``source.git.open_tree`` (the two trees), ``specs.loader`` (one
incremental loader for both, so unchanged files are parsed once),
``specs.diff`` (the comparison).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from flink_gitops.cli import settings_from
from flink_gitops.specs.diff import JobDiff, diff_states
from flink_gitops.specs.errors import Problem, quote
from flink_gitops.specs.guards import SpecGuards
from flink_gitops.specs.loader import DesiredState, SpecLoader

_SIGN = {"added": "+", "removed": "-", "changed": "~", "unchanged": "=", "invalid": "!", "fixed": "+"}


#: most characters of a field value shown in text and Markdown (JSON carries the whole value).
MAX_VALUE_CHARS = 80


@dataclass(frozen=True)
class HeadProblems:
    """The head revision's problems that no shown job carries, and which problems are new."""

    #: problems of files (or documents) no job diff carries: unparseable files, unnamed documents.
    files: tuple[Problem, ...]
    #: every error of the head revision.
    errors: tuple[Problem, ...]
    #: the head's problems that the base revision did not have (compared without line numbers).
    new: frozenset[Problem]

    @classmethod
    def of(cls, diffs: list[JobDiff], before: DesiredState, after: DesiredState) -> HeadProblems:
        carried = {p for d in diffs for p in d.problems}
        old = {(p.file, p.message, p.severity) for p in before.problems}
        return cls(
            files=tuple(p for p in after.problems if p not in carried),
            errors=after.errors,
            new=frozenset(p for p in after.problems if (p.file, p.message, p.severity) not in old),
        )

    def describe(self, p: Problem) -> str:
        return f"{p}" + (" (new)" if p in self.new else "")


_NONE = HeadProblems((), (), frozenset())


def _value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, str):
        if v.startswith("sha256:") and len(v) > 23:
            return v[:23] + "…"
        text = v
    else:
        text = json.dumps(v, separators=(", ", ": "))
    if len(text) > MAX_VALUE_CHARS or not text.isprintable():
        return quote(text, MAX_VALUE_CHARS)
    return text


def _headline(d: JobDiff) -> str:
    what = d.change.label if d.change is not None else d.status
    if d.status == "changed":
        what = f"changed ({what})"
    return what


def _counts(diffs: list[JobDiff], problems: HeadProblems = _NONE) -> str:
    parts = []
    for status in ("changed", "added", "fixed", "removed", "invalid", "unchanged"):
        n = sum(1 for d in diffs if d.status == status)
        if n or status in ("changed", "added", "removed"):
            parts.append(f"{n} {status}")
    text = ", ".join(parts)
    if problems.errors:
        new = sum(1 for p in problems.errors if p in problems.new)
        text += f"; {len(problems.errors)} error(s) in the head revision ({new} new)"
    return text


def render_text(diffs: list[JobDiff], base: str, head: str, problems: HeadProblems = _NONE) -> str:
    lines = [f"Plan {base[:12]} → {head[:12]}: {_counts(diffs, problems)}"]
    for d in diffs:
        if d.status == "unchanged":
            continue
        lines.append(
            f"{_SIGN[d.status]} {d.name}: {_headline(d)}  [{d.file}]" + (f" — {d.note}" if d.note else "")
        )
        for f in d.changes.fields if d.changes else ():
            lines.append(f"    {f.path}: {_value(f.old)} → {_value(f.new)}  ({f.kind}, {f.change.label})")
        for p in d.problems:
            lines.append(f"    {problems.describe(p)}")
    if problems.files:
        lines.append("Problems in files of the head revision (no job applied from them):")
        lines += (f"    {problems.describe(p)}" for p in problems.files)
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(diffs: list[JobDiff], base: str, head: str, problems: HeadProblems = _NONE) -> str:
    out = [f"### flink-gitops plan `{base[:12]}` → `{head[:12]}`", "", _counts(diffs, problems), ""]
    shown = [d for d in diffs if d.status != "unchanged"]
    if problems.files:
        # visible, not folded: these files apply nothing and no job row says so
        out += ["**Problems in files of the head revision (no job applied from them):**", "", "```"]
        out += [problems.describe(p) for p in problems.files]
        out += ["```", ""]
    if not shown:
        out.append("No job changes.")
        return "\n".join(out) + "\n"
    out += ["| | Job | Change | Fields | File |", "|---|---|---|---|---|"]
    for d in shown:
        fields = "<br>".join(
            f"`{_md(f.path)}`: `{_md(_value(f.old))}` → `{_md(_value(f.new))}` ({f.change.label})"
            for f in (d.changes.fields if d.changes else ())
        )
        if d.note:
            fields = f"{fields}<br>_{_md(d.note)}_" if fields else f"_{_md(d.note)}_"
        first_error = next((p for p in d.problems if p.is_error), None)
        if d.status == "invalid" and first_error is not None:
            more = len([p for p in d.problems if p.is_error]) - 1
            fields += f"<br>`{_md(str(first_error))}`" + (f" (and {more} more)" if more else "")
        file = _md(d.file or "")
        out.append(f"| {_SIGN[d.status]} | `{d.name}` | **{_headline(d)}** | {fields} | `{file}` |")
    job_problems = [p for d in shown for p in d.problems]
    if job_problems:
        out += ["", "<details><summary>Problems</summary>", "", "```"]
        out += [problems.describe(p) for p in job_problems]
        out += ["```", "", "</details>"]
    return "\n".join(out) + "\n"


def _problem_json(p: Problem, problems: HeadProblems) -> dict[str, object]:
    return {
        "file": p.file,
        "line": p.line,
        "col": p.col,
        "severity": p.severity,
        "message": p.message,
        "job": p.job,
        "new": p in problems.new,
    }


def render_json(diffs: list[JobDiff], base: str, head: str, problems: HeadProblems = _NONE) -> str:
    jobs = []
    for d in diffs:
        jobs.append(
            {
                "name": d.name,
                "status": d.status,
                "change": d.change.label if d.change is not None else None,
                "file": d.file,
                "note": d.note or None,
                "fields": [
                    {"path": f.path, "kind": f.kind, "change": f.change.label, "old": f.old, "new": f.new}
                    for f in (d.changes.fields if d.changes else ())
                ],
                "problems": [str(p) for p in d.problems],
            }
        )
    report = {
        "base": base,
        "head": head,
        "ok": not problems.errors,
        "errors": len(problems.errors),
        "jobs": jobs,
        "fileProblems": [_problem_json(p, problems) for p in problems.files],
    }
    return json.dumps(report, indent=2) + "\n"


@click.command()
@click.option(
    "--repo", type=click.Path(path_type=Path, file_okay=False), default=Path("."), show_default=True
)
@click.option("--base", required=True, help="The revision before (e.g. origin/main).")
@click.option("--head", default="HEAD", show_default=True, help="The revision after (e.g. the PR head).")
@click.option(
    "--dir", "spec_dir", default=None, help="Spec directory in the repo. Default: the config's git.path."
)
@click.option("--output", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.pass_context
def plan(ctx: click.Context, repo: Path, base: str, head: str, spec_dir: str | None, output: str) -> None:
    """Show what HEAD changes compared with BASE, per job, and every error of HEAD.

    Exit status: 0 HEAD has no errors, 1 HEAD has errors (their jobs would be left as they are),
    2 no plan could be made (unknown ref, not a repository, invalid config).
    """
    from flink_gitops.source.git import open_tree

    settings = settings_from(ctx)
    loader = SpecLoader(
        spec_dir if spec_dir is not None else settings.git.path,
        limits=settings.spec_limits,
        artifact_roots=settings.artifact_roots,
        guards=SpecGuards.from_settings(settings),
    )
    base_tree = open_tree(repo, base)
    try:
        head_tree = open_tree(repo, head)
        try:
            before = loader.load(base_tree)
            after = loader.load(head_tree)
        finally:
            head_tree.close()
    finally:
        base_tree.close()
    diffs = diff_states(before, after)
    base_id, head_id = before.commit or base, after.commit or head
    problems = HeadProblems.of(diffs, before, after)
    render = {"text": render_text, "markdown": render_markdown, "json": render_json}[output]
    click.echo(render(diffs, base_id, head_id, problems), nl=False)
    ctx.exit(1 if problems.errors else 0)
