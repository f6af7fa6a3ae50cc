"""`flink-gitops demo`: the embedded default, the GitOps loop end to end on one machine.

Ensures Flink 2.3.0 is installed (flink/local.ensure_flink), starts a local
session cluster under ./.demo (flink/local.LocalFlinkCluster), checks it
through the REST client (flink/client), loads and validates the example
repository (specs/loader), records the run in the local SQLite store's audit
trail under ``<workdir>/state``, makes a Git repository of the example
repository and runs the daemon on it as a subprocess (``cli.demo_loop``): the
daemon deploys the jobs, the demo commits a change to one savepoint-mode spec
and shows the upgrade, the new job restored from the stop savepoint. It stops
the daemon (SIGTERM), verifies the audit chain, prints a summary and stops the
cluster, or keeps both running until Ctrl-C / SIGTERM with ``--keep-running``
so the user can commit changes of their own. A previous run's state and
repository are moved aside, never deleted. ``make demo`` runs it from a fresh clone.
"""

from __future__ import annotations

import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click

from flink_gitops.cli import demo_loop as loop
from flink_gitops.clock import SystemClock
from flink_gitops.flink.client import FlinkClient
from flink_gitops.flink.local import DEFAULT_VERSION, LocalFlinkCluster, ensure_flink, port_is_free
from flink_gitops.record.audit import AuditEvent, AuditTrail, HeadFile, cli_actor, verify_trail
from flink_gitops.record.audit.trail import head_file_path
from flink_gitops.record.keys import ensure_key_file
from flink_gitops.record.store import open_store
from flink_gitops.settings import AuditConfig, ClusterConfig, Settings, StoreConfig, load_settings
from flink_gitops.source.git import seed_repository
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
    help="Where the cluster, the demo's Git repository, the daemon's state and logs live.",
)
@click.option(
    "--repo",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Spec repository the demo's Git repository is made from. Default: ./example-repo.",
)
@click.option("--keep-running", is_flag=True, help="Keep the cluster and daemon up until Ctrl-C or SIGTERM.")
@click.option("--flink-version", default=DEFAULT_VERSION, show_default=True, hidden=True)
def demo(workdir: Path, repo: Path | None, keep_running: bool, flink_version: str) -> None:
    """The GitOps loop on one machine: a local Flink cluster, a Git repository, the daemon, a commit."""
    started = time.monotonic()
    base = load_settings(None)  # first: a bad FLINK_GITOPS_* override fails before Flink starts
    repo = repo or _example_repo()
    if repo is None:
        raise click.UsageError("no example repository found: pass --repo PATH")
    state = SpecLoader().load(DirectoryTree(repo))
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
        _print_specs(state, repo)
        state_dir, git_dir = workdir / "state", workdir / "repo"
        for kept in (_set_aside(state_dir), _set_aside(git_dir)):
            if kept is not None:
                click.echo(f"A previous demo's {kept.name.split('.')[0]} is kept in {kept}")
        click.echo(f"State store and audit trail in {state_dir} (SQLite):")
        event = AuditEvent(
            action="demo.run",
            actor=cli_actor(),
            cluster="default",
            outcome="succeeded",
            details={
                "flink_version": version,
                "valid_jobs": len(state.valid_jobs()),
                "rest_url": cluster.rest_url,
            },
        )
        click.echo(f"  {_record_run(base, state_dir, event)}")
        seeded = seed_repository(repo, git_dir, message=f"flink-gitops demo: jobs from {repo.name}")
        click.echo(f"Git repository {git_dir} made from {repo} (commit {seeded[:12]})")
        config, api_url, token = loop.write_daemon_config(workdir, state_dir, git_dir, cluster.rest_url)
        log = workdir / "daemon.log"
        running = {
            name
            for name, job in state.valid_jobs().items()
            if job.spec.spec.schedule is None and job.spec.spec.job.state == "running"
        }
        click.echo(f"Starting the daemon: flink-gitops --config {config} run  (log: {log}, API: {api_url})")
        with loop.daemon(config, log) as proc:
            api = loop.Api(api_url, token)
            jobs = loop.wait_deployed(api, proc, running)
            for name in sorted(jobs):
                job = jobs[name]
                if name in running:
                    click.echo(f"  {name:<24} {job['state']:<10} flink job {job['flink_job_id']}")
                else:
                    click.echo(f"  {name:<24} {job['state']:<10} (a batch job on cron: runs at its time)")
            click.echo(
                f"All {len(running)} streaming job(s) deployed by the daemon, "
                f"{time.monotonic() - started:.1f} s after the start."
            )
            old = jobs[loop.CHANGED_JOB]["flink_job_id"]
            commit, what = loop.change_spec(git_dir)
            click.echo(f"Committed {commit[:12]} to {git_dir}: {what} (upgradeMode: savepoint)")
            click.echo(
                "  the daemon watches the repository (and polls it every 2 s); watching the upgrade ..."
            )
            up = loop.wait_upgraded(api, proc, old, commit, cluster.rest_url)
            carried = up.restored_from is not None and _same_path(up.restored_from, up.savepoint)
            click.echo(f"  stopped job {up.old_job} with a savepoint: {up.savepoint}")
            click.echo(f"  started job {up.new_job}, restored from: {up.restored_from or 'nothing'}")
            click.echo(
                f"  {loop.CHANGED_JOB} upgraded in {up.took_s:.1f} s after the commit; "
                + ("its keyed state carried over." if carried else "STATE NOT CARRIED OVER.")
            )
            click.echo(
                "Try it yourself: edit a spec and commit, the daemon does the rest:\n"
                f"  cd {git_dir} && $EDITOR jobs/payments.yaml && git commit -am 'my change'\n"
                f"  {_command()} --config {config} status\n"
                f'  curl -H "Authorization: Bearer $(cat {workdir / "api-token"})" {api_url}/api/v1/jobs'
            )
            if keep_running:
                click.echo(
                    f"Cluster and daemon running ({cluster.rest_url}, {api_url}); "
                    "Ctrl-C or SIGTERM stops them."
                )
                with _until_signal() as stop:
                    while not stop.wait(1.0) and proc.alive():
                        pass
            click.echo("Stopping the daemon (SIGTERM: it parks any action in flight) ...")
        code = proc.proc.returncode
        report = _verify(demo_settings(base, state_dir, cluster.rest_url))
        click.echo(
            f"Summary: Flink {version} with {overview.taskmanagers} TaskManager(s) and "
            f"{overview.slots_total} slot(s); {len(running)} job(s) deployed from Git, {loop.CHANGED_JOB} "
            f"upgraded through a savepoint {'with its state' if carried else 'WITHOUT its state'}; "
            f"daemon exit {code}; {report}; {time.monotonic() - started:.1f} s"
        )
        if not carried or code != 0 or "intact" not in report:
            raise click.ClickException(f"the demo did not go as it should; see above and {log}")
        click.echo("Stopping the cluster ...")
    click.echo("Done.")


def _command() -> str:
    """How this shell can run flink-gitops (``make demo`` leaves it in .venv/bin, not on PATH)."""
    found = shutil.which("flink-gitops")
    here = Path(sys.executable).with_name("flink-gitops")
    if found is not None and Path(found).resolve() == here.resolve():
        return "flink-gitops"
    return str(here) if here.exists() else f"{sys.executable} -m flink_gitops"


def _same_path(a: str, b: str) -> bool:
    """Two spellings of one savepoint location (``file:/x`` and ``file:///x``)."""

    def norm(p: str) -> str:
        return p.removeprefix("file://").removeprefix("file:").rstrip("/")

    return norm(a) == norm(b)


def _verify(settings: Settings) -> str:
    with open_store(settings) as store:
        report = verify_trail(store, HeadFile(head_file_path(settings)))
    verdict = "intact" if report.ok else f"BROKEN at seq {report.first_break}"
    return f"audit chain of {report.records} record(s) {verdict}"
