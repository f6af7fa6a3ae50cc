"""`flink-gitops plan --repo PATH --base REF --head REF`: what a revision (a pull request) would change.

Per job: added, removed, changed (with the change class and every changed
field), unchanged, invalid (left as is) — as plain text, Markdown to paste as
a PR comment, or JSON. Git-only for now; the live-cluster plan comes later.
Neighbours: ``source.git.open_tree`` (the two trees), ``specs.loader`` (one
incremental loader for both, so unchanged files are parsed once),
``specs.diff`` (the comparison).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from flink_gitops.cli import settings_from
from flink_gitops.specs.diff import JobDiff, diff_states
from flink_gitops.specs.loader import SpecLoader

_SIGN = {"added": "+", "removed": "-", "changed": "~", "unchanged": "=", "invalid": "!", "fixed": "+"}


def _value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, str):
        if v.startswith("sha256:") and len(v) > 23:
            return v[:23] + "…"
        return v
    return json.dumps(v, separators=(", ", ": "))


def _headline(d: JobDiff) -> str:
    what = d.change.label if d.change is not None else d.status
    if d.status == "changed":
        what = f"changed ({what})"
    return what


def _counts(diffs: list[JobDiff]) -> str:
    parts = []
    for status in ("changed", "added", "fixed", "removed", "invalid", "unchanged"):
        n = sum(1 for d in diffs if d.status == status)
        if n or status in ("changed", "added", "removed"):
            parts.append(f"{n} {status}")
    return ", ".join(parts)


def render_text(diffs: list[JobDiff], base: str, head: str) -> str:
    lines = [f"Plan {base[:12]} → {head[:12]}: {_counts(diffs)}"]
    for d in diffs:
        if d.status == "unchanged":
            continue
        lines.append(
            f"{_SIGN[d.status]} {d.name}: {_headline(d)}  [{d.file}]" + (f" — {d.note}" if d.note else "")
        )
        for f in d.changes.fields if d.changes else ():
            lines.append(f"    {f.path}: {_value(f.old)} → {_value(f.new)}  ({f.kind}, {f.change.label})")
        for p in d.problems:
            lines.append(f"    {p}")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(diffs: list[JobDiff], base: str, head: str) -> str:
    out = [f"### flink-gitops plan `{base[:12]}` → `{head[:12]}`", "", _counts(diffs), ""]
    shown = [d for d in diffs if d.status != "unchanged"]
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
        file = _md(d.file or "")
        out.append(f"| {_SIGN[d.status]} | `{d.name}` | **{_headline(d)}** | {fields} | `{file}` |")
    problems = [p for d in shown for p in d.problems]
    if problems:
        out += ["", "<details><summary>Problems</summary>", "", "```"]
        out += [str(p) for p in problems]
        out += ["```", "", "</details>"]
    return "\n".join(out) + "\n"


def render_json(diffs: list[JobDiff], base: str, head: str) -> str:
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
    return json.dumps({"base": base, "head": head, "jobs": jobs}, indent=2) + "\n"


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
    """Show what HEAD changes compared with BASE, per job."""
    from flink_gitops.source.git import open_tree

    settings = settings_from(ctx)
    loader = SpecLoader(
        spec_dir if spec_dir is not None else settings.git.path,
        limits=settings.spec_limits,
        artifact_roots=settings.artifact_roots,
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
    render = {"text": render_text, "markdown": render_markdown, "json": render_json}[output]
    click.echo(render(diffs, base_id, head_id), nl=False)
