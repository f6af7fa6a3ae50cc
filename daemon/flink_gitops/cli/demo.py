"""`flink-gitops demo`: the embedded default, end to end on one machine.

Ensures Flink 2.3.0 is installed (flink/local.ensure_flink), starts a local
session cluster under ./.demo (flink/local.LocalFlinkCluster), checks it
through the REST client (flink/client), loads and validates the example
repository with the spec loader (specs/loader), opens the local SQLite state
store (record/store) and the audit trail (record/audit, a key file made on
first use) under ``<workdir>/state``, records the run, then does the daemon's
main job: one reconcile cycle (execute/cycle, as ``sync --once``) deploys the
example jobs on the local cluster, and a second one finds everything in sync.
It verifies the audit chain, prints a summary and stops the cluster again, or
keeps it (and the jobs) running until Ctrl-C / SIGTERM with ``--keep-running``.
A previous run's state (its jobs died with its cluster) is moved aside, never
deleted. ``make demo`` runs it from a fresh clone.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click

from flink_gitops.clock import SystemClock
from flink_gitops.flink.client import FlinkClient
from flink_gitops.flink.local import DEFAULT_VERSION, LocalFlinkCluster, ensure_flink, port_is_free
from flink_gitops.record.audit import AuditEvent, AuditTrail, cli_actor, verify_trail
from flink_gitops.record.keys import ensure_key_file
from flink_gitops.record.store import open_store
from flink_gitops.settings import AuditConfig, ClusterConfig, Settings, StoreConfig, load_settings
from flink_gitops.source.tree import DirectoryTree
from flink_gitops.specs.loader import DesiredState, SpecLoader

#: The embedded default config expects the cluster "default" at 127.0.0.1:8081; used when free.
DEMO_REST_PORT = 8081


def _example_repo() -> Path | None:
    """./example-repo, else the one next to the package in a source checkout."""
    for candidate in (Path.cwd() / "example-repo", Path(__file__).resolve().parents[3] / "example-repo"):
        if candidate.is_dir():
            return candidate
    return None


@contextmanager
def _until_signal() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM (previous handlers restored on exit)."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _print_specs(state: DesiredState, repo: Path) -> None:
    click.echo(f"Example repository {repo}:")
    for name, job in sorted(state.valid_jobs().items()):
        spec = job.spec.spec
        click.echo(
            f"  {name:<24} {job.file}:{job.line}  cluster={spec.cluster} "
            f"upgradeMode={spec.job.upgradeMode} state={spec.job.state} hash={job.spec_hash[:12]}"
        )
    for problem in state.problems:
        click.echo(f"  {problem.where()}: {problem.severity}: {problem.message}")
    invalid = len(state.invalid_jobs()) + len(state.unnamed)
    click.echo(
        f"  {len(state.valid_jobs())} valid job(s), {invalid} invalid, {len(state.warnings)} warning(s)"
    )


def demo_settings(base: Settings, state_dir: Path, rest_url: str | None = None) -> Settings:
    """The demo's own settings: its SQLite store, key and head file under ``state_dir`` whatever
    ``FLINK_GITOPS_STORE__*`` / ``FLINK_GITOPS_AUDIT__*`` say, and its local cluster as ``default``."""
    update: dict[str, object] = {
        "state_dir": state_dir,
        "store": StoreConfig(),
        "audit": AuditConfig(key_file=state_dir / "audit.key"),
        "git": base.git.model_copy(update={"url": ""}),
        "sync": base.sync.model_copy(update={"stability_s": 2.0, "prune": False}),
    }
    if rest_url is not None:
        update["clusters"] = {"default": ClusterConfig(url=rest_url)}
    return base.model_copy(update=update)


def _set_aside(state_dir: Path) -> Path | None:
    """Move a previous run's state out of the way (kept, never deleted); where it went."""
    if not state_dir.exists():
        return None
    for n in range(1, 10_000):
        target = state_dir.with_name(f"{state_dir.name}.previous-{n}")
        if not target.exists():
            state_dir.rename(target)
            return target
    raise click.ClickException(f"too many previous demo states next to {state_dir}; remove some")


def _reconcile(settings: Settings, repo: Path) -> tuple[str, bool]:
    """Two cycles on the local cluster: the first deploys, the second must find everything in sync."""
    from flink_gitops.cli.sync import runtime
    from flink_gitops.execute.cycle import Revision

    tree = DirectoryTree(repo)
    revision = Revision(SpecLoader.from_settings(settings).load(tree), None)
    lines: list[str] = []
    with runtime(settings) as rt:
        first = rt.reconciler.cycle(
            revision, tree=tree, progress=lambda job, step: click.echo(f"    {job}: {step}")
        )
        for name, result in sorted(first.results.items()):
            lines.append(
                f"  {name:<24} {result.kind.value:<8} {'ok' if result.ok else 'FAILED'}: {result.message}"
            )
        second = rt.reconciler.cycle(revision, tree=tree)
        report = verify_trail(rt.store, rt.audit.head_file)
    for name, why in second.problems().items():
        lines.append(f"  not in sync: {name}: {why}")
    verdict = "intact" if report.ok else f"BROKEN at seq {report.first_break}"
    lines.append(f"  second cycle: {'in sync' if second.in_sync else 'NOT in sync'}, {second.summary()}")
    lines.append(f"  audit chain of {report.records} record(s) {verdict}")
    return "\n".join(lines), second.in_sync and report.ok


def _record_run(base: Settings, state_dir: Path, event: AuditEvent) -> str:
    """Append ``event`` to the demo's audit trail (SQLite + key file under ``state_dir``); verify it.

    The store and audit sections are the demo's own whatever ``FLINK_GITOPS_STORE__*`` /
    ``FLINK_GITOPS_AUDIT__*`` say: a demo run never writes into a configured (production) trail.
    """
    key_file = state_dir / "audit.key"
    settings = demo_settings(base, state_dir)
    if ensure_key_file(key_file):
        click.echo(f"  made an audit master key {key_file} (mode 0600)")
    with open_store(settings) as store:
        trail = AuditTrail.from_settings(settings, store, clock=SystemClock(), actor=event.actor)
        record = trail.record(event)
        report = verify_trail(store, trail.head_file)
    verdict = "intact" if report.ok else f"BROKEN at seq {report.first_break}"
    return f"audit record #{record.seq} written; chain of {report.records} record(s) {verdict}"


@click.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".demo"),
    show_default=True,
    help="Where the local cluster keeps its configuration, logs, checkpoints and savepoints.",
)
@click.option(
    "--repo",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Spec repository to load. Default: ./example-repo.",
)
@click.option("--keep-running", is_flag=True, help="Keep the cluster up until Ctrl-C or SIGTERM.")
@click.option("--flink-version", default=DEFAULT_VERSION, show_default=True, hidden=True)
def demo(workdir: Path, repo: Path | None, keep_running: bool, flink_version: str) -> None:
    """Start a local Flink session cluster, load the example repository, show what would be managed."""
    started = time.monotonic()
    base = load_settings(None)  # first: a bad FLINK_GITOPS_* override fails before Flink starts
    click.echo(f"Ensuring Flink {flink_version} (installed once into the cache) ...")
    home = ensure_flink(flink_version)
    click.echo(f"  FLINK_HOME {home}")
    port = DEMO_REST_PORT if port_is_free(DEMO_REST_PORT) else None
    # 8 slots: the example jobs need 5 (orders-enricher runs with parallelism 2)
    cluster = LocalFlinkCluster(home, workdir / "cluster", rest_port=port, slots=8)
    click.echo(f"Starting a local session cluster (logs in {cluster.log_dir}) ...")
    t0 = time.monotonic()
    with cluster:
        ready_s = time.monotonic() - t0
        with FlinkClient(cluster.rest_url, name="demo") as client:
            overview = client.overview()
            version = client.version().flink_version
        click.echo(
            f"Flink {version} at {cluster.rest_url}: ready in {ready_s:.1f} s, "
            f"TaskManagers: {overview.taskmanagers}, slots: {overview.slots_available}/{overview.slots_total}"
        )

        repo = repo or _example_repo()
        if repo is None:
            click.echo("No example repository found (pass --repo PATH); skipping the specs.")
            state = None
        else:
            state = SpecLoader().load(DirectoryTree(repo))
            _print_specs(state, repo)

        valid = len(state.valid_jobs()) if state is not None else 0
        state_dir = workdir / "state"
        previous = _set_aside(state_dir)
        if previous is not None:
            click.echo(f"A previous demo's state (its jobs stopped with its cluster) is kept in {previous}")
        click.echo(f"State store and audit trail in {state_dir} (SQLite):")
        event = AuditEvent(
            action="demo.run",
            actor=cli_actor(),
            cluster="default",
            outcome="succeeded",
            details={"flink_version": version, "valid_jobs": valid, "rest_url": cluster.rest_url},
        )
        click.echo(f"  {_record_run(base, state_dir, event)}")
        in_sync = False
        if repo is not None:
            click.echo("Reconciling the example repository on the local cluster (as `sync --once`) ...")
            text, in_sync = _reconcile(demo_settings(base, state_dir, cluster.rest_url), repo)
            click.echo(text)
        click.echo(
            f"Summary: Flink {version} with {overview.taskmanagers} TaskManager(s) and "
            f"{overview.slots_total} slot(s); {valid} job spec(s) valid; "
            f"{'in sync' if in_sync else 'NOT in sync'}; {time.monotonic() - started:.1f} s"
        )
        if repo is not None and not in_sync:
            raise click.ClickException("the example repository did not reconcile; see above")
        if keep_running:
            click.echo(f"Cluster running at {cluster.rest_url}; Ctrl-C or SIGTERM stops it.")
            with _until_signal() as stop:
                while not stop.wait(1.0):
                    pass
        click.echo("Stopping the cluster ...")
    click.echo("Done.")
