"""`flink-gitops run`: the reconcile cycle on a schedule, for as long as the service runs.

APScheduler runs :meth:`Daemon.tick` every ``git.poll_interval_s`` (plus up to
``git.poll_jitter_s`` of jitter, so replicas do not poll in step), never two at
once (``max_instances=1``; a slow cycle delays the next, and missed runs
coalesce into one). :meth:`Daemon.trigger` runs one at once (a webhook, the file
watcher of a repository on local disk, ``service.watch``); a burst of triggers
while one runs is one more cycle, not many. Each tick polls the source and
reloads specs only when the commit moved, then runs one reconcile cycle, which
logs its one summary line. Before each cycle, and
every ``store.lease_ttl_s / 3`` between cycles, the replica keeps the leases of
the clusters it leads and takes free ones (``Reconciler.lead_all``, within
``store.max_clusters_per_instance``); a cluster led by another replica is only
observed, never acted on. A clean stop releases the leases at once. Savepoints the API asks
for are queued and taken at the start of the next tick, under the same lock as the cycle.

The main thread only waits: on SIGTERM it sends STOPPING, tells the reconciler
to stop (the action in flight parks at its last recorded step, and is resumed
from there on the next start), waits for the tick to return, releases the
leases and exits 0. On SIGHUP it re-reads the config; an invalid one is
refused with its key named and the old one stays in force; a valid one takes
effect at the next tick. It also feeds systemd's watchdog — only while the loop
is alive: between cycles, or while a cycle still makes progress (every wait in
the reconciler beats); a cycle stuck in a call that never returns stops the
pings, and systemd restarts the service. Neighbours: ``execute.cycle``
(the work), ``service.notify`` (systemd), ``cli.run`` (the command).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from loguru import logger

from flink_gitops.clock import Clock
from flink_gitops.errors import FlinkGitOpsError, TemporaryError
from flink_gitops.execute.cycle import CycleResult, Reconciler, Revision
from flink_gitops.record.store import Lease
from flink_gitops.service.alerts import Alert, Alerter, conditions
from flink_gitops.service.metrics import Metrics
from flink_gitops.service.notify import Notifier
from flink_gitops.service.watch import Watcher
from flink_gitops.settings import HttpConfig, Settings
from flink_gitops.source.errors import SignatureError
from flink_gitops.source.git import GitSource, PollResult
from flink_gitops.source.tree import DirectoryTree, Tree
from flink_gitops.specs.loader import DesiredState, SpecLoader

#: unexpected errors (bugs) in consecutive cycles after which the daemon exits 1 (systemd restarts it).
MAX_UNEXPECTED = 5


class Runtime(Protocol):
    """What the daemon needs of an opened runtime (``cli.sync.Runtime`` is one)."""

    @property
    def reconciler(self) -> Reconciler: ...


OpenRuntime = Callable[[Settings], AbstractContextManager[Runtime]]


class Service(Protocol):
    """Something served beside the loop (the HTTP API): started after the runtime opens, stopped
    before the loop parks."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def reload(self, http: HttpConfig) -> None:
        """SIGHUP: take what may change while running from the new settings (ConfigError: refused)."""
        ...


@dataclass
class _Source:
    """Where revisions come from: the configured Git repository, or a directory (``--repo``)."""

    git: GitSource | None
    directory: Path | None

    #: the last poll's error (the source is stale while it lasts), and whether it was a signature.
    error: str | None = None
    signature_refused: bool = False
    #: the last Git poll (its duration and outcome feed the metrics); None for a directory.
    last_poll: PollResult | None = None

    def poll(self) -> tuple[Tree, str | None, str | None] | str:
        """(tree, commit, signer), or why there is no revision to act on."""
        if self.directory is not None:
            return DirectoryTree(self.directory), None, None
        assert self.git is not None
        polled = self.git.poll()
        self.last_poll = polled
        self.error = str(polled.error) if polled.error is not None else None
        self.signature_refused = isinstance(polled.error, SignatureError)
        if polled.error is not None:
            logger.error("git: {}", polled.error)
        if polled.revision is None:
            return f"no revision could be loaded: {polled.error}"
        signer = polled.revision.signer
        who = f"{signer.identity} ({signer.key})" if signer is not None else None
        return polled.revision.tree, polled.revision.commit, who


class Daemon:
    """The run loop; ``run()`` blocks until SIGTERM (or :meth:`stop`)."""

    def __init__(
        self,
        settings: Settings,
        *,
        reload: Callable[[], Settings],
        open_runtime: OpenRuntime,
        clock: Clock,
        notifier: Notifier | None = None,
        repo: Path | None = None,
        alerter: Alerter | None = None,
        serve: Callable[[Daemon], Service] | None = None,
    ) -> None:
        self.settings = settings
        self._serve = serve
        self._reload = reload
        self._open_runtime = open_runtime
        self.clock = clock
        self.notifier = notifier or Notifier(None)
        self.repo = repo
        #: Prometheus metrics, updated after every cycle (``/metrics`` in the API).
        self.metrics = Metrics()
        #: alerts after every cycle (None: logged only, see ``service.alerts``).
        self.alerter = alerter or Alerter([], clock)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._again = threading.Event()  # a trigger since the current cycle began
        self._reload_asked = threading.Event()
        self._pending: Settings | None = None
        self._lock = threading.Lock()
        self._runtime: ExitStack | None = None
        self._reconciler: Reconciler | None = None
        self._source: _Source | None = None
        self._loader: SpecLoader | None = None
        self._last: tuple[str | None, DesiredState] | None = None
        self._in_cycle = False
        self._last_beat = clock.monotonic()
        self.cycles = 0
        self.last_result: CycleResult | None = None
        self.last_cycle_at: datetime | None = None
        self._scheduler: BackgroundScheduler | None = None
        self._service: Service | None = None
        self._bugs = 0
        self.exit_code = 0
        #: savepoints the API asked for, taken at the start of the next cycle (under ``_lock``).
        self._savepoints: dict[str, None] = {}
        self._queue_lock = threading.Lock()

    @property
    def reconciler(self) -> Reconciler | None:
        """The reconciler of the runtime open now (its store and audit trail), None while closed."""
        return self._reconciler

    # --- one tick ------------------------------------------------------------------------------

    def _open(self, settings: Settings) -> None:
        """(Re)build the runtime, source and loader for ``settings`` (the previous ones closed).

        On a reload the leases of clusters still configured, on the same store, pass to the new
        reconciler (same process, same holder, same epoch): releasing them for the moment of the
        reopen would let another replica take a cluster this one is still leading."""
        carried = self._carry_leases(settings)
        self._close()
        stack = ExitStack()
        try:
            runtime = stack.enter_context(self._open_runtime(settings))
            git = None
            if self.repo is None:
                git = GitSource.from_settings(settings, clock=self.clock)
                stack.callback(git.close)
        except BaseException:
            stack.close()
            raise
        self._runtime = stack
        self._reconciler = runtime.reconciler
        self._reconciler.leases.update(carried)
        self._reconciler.heartbeat = self._beat
        if self._stop.is_set():
            self._reconciler.stopping.set()
        self._source = _Source(git, self.repo)
        self._loader = SpecLoader.from_settings(settings)
        self._last = None
        self.settings = settings

    def _carry_leases(self, settings: Settings) -> dict[str, Lease]:
        """The leases the reconciler for ``settings`` keeps (taken out of the old one's hands)."""
        old = self._reconciler
        if old is None or _database(settings) != _database(self.settings):
            return {}  # another database: these leases mean nothing there
        carried = {c: lease for c, lease in old.leases.items() if c in settings.clusters}
        for cluster in carried:
            del old.leases[cluster]
        return carried

    def _close(self) -> None:
        if self._runtime is not None:
            stack, self._runtime, self._reconciler = self._runtime, None, None
            stack.close()

    def _beat(self) -> None:
        self._last_beat = self.clock.monotonic()

    def tick(self) -> CycleResult | None:
        """One cycle, and one more if :meth:`trigger` was called while it ran (APScheduler skips a
        run that is due while one runs: without this, a webhook during a cycle would wait for the
        next poll). A burst of triggers during a cycle is one more cycle."""
        while True:
            self._again.clear()
            result = self._one_tick()
            if self._stop.is_set() or not self._again.is_set():
                return result
            logger.info("one more cycle: requested while the last one ran")

    def _one_tick(self) -> CycleResult | None:
        """One cycle: poll, load when the commit moved, reconcile. Never raises for a failure of
        the cycle (logged; the next tick tries again)."""
        with self._lock:
            if self._stop.is_set():
                return None
            self._in_cycle = True
            self._beat()
            try:
                result = self._tick()
                self._bugs = 0
                return result
            except FlinkGitOpsError as exc:
                logger.error("cycle failed: {}", exc)
                self.notifier.status(f"last cycle failed: {type(exc).__name__}")
                return None
            except Exception:  # noqa: BLE001 - a bug in one cycle is logged whole; five in a row end the run
                self._bugs += 1
                logger.exception("cycle failed with an unexpected error ({} in a row)", self._bugs)
                if self._bugs >= MAX_UNEXPECTED:
                    logger.error("{} unexpected errors in a row: stopping (exit 1)", self._bugs)
                    self.exit_code = 1
                    self.stop()
                return None
            finally:
                self._in_cycle = False
                self._beat()

    def _tick(self) -> CycleResult | None:
        pending, self._pending = self._pending, None
        if pending is not None or self._reconciler is None:
            self._open(pending or self.settings)
        assert self._source is not None
        assert self._loader is not None
        assert self._reconciler is not None
        if self._savepoints:  # asked for now: they need no revision, so not even a Git outage waits
            self._reconciler.lead_all()
            self._take_queued_savepoints(self._reconciler)
        polled = self._source.poll()
        if self._source.last_poll is not None:
            done = self._source.last_poll
            self.metrics.observe_poll(done.duration_s, done.ok, self.clock.now().timestamp())
        if isinstance(polled, str):
            logger.error("no cycle: {}", polled)
            kind = "FlinkGitOpsSignatureRefused" if self._source.signature_refused else "FlinkGitOpsGitStale"
            self.alerter.observe([*self._still_active(), Alert(f"git:{kind}", kind, "critical", polled)])
            return None
        tree, commit, signer = polled
        if self._last is not None and commit is not None and self._last[0] == commit:
            desired = self._last[1]  # the commit did not move: no spec loading
        else:
            desired = self._loader.load(tree)
            for problem in desired.errors:
                logger.error("{}: {}", problem.where(), problem.message)
            self._last = (commit, desired)
        self._reconciler.lead_all()  # keep our clusters, take free ones; the rest are only observed
        result = self._reconciler.cycle(Revision(desired, commit, signer), tree=tree)
        self.alerter.observe(
            conditions(
                result,
                source_error=self._source.error,
                signature_refused=self._source.signature_refused,
            )
        )
        self.cycles += 1
        self.last_result = result
        self.last_cycle_at = self.clock.now()
        self.metrics.observe_cycle(
            result,
            list(self.settings.clusters),
            self.last_cycle_at.timestamp(),
            leadership=self._reconciler.leadership(),
            breakers=self._reconciler.breakers(),
        )
        audit = self._reconciler.audit
        self.metrics.observe_audit(audit, audit.appended, audit.writable)
        if self.cycles == 1:
            self.notifier.ready(f"reconciling {len(result.plan.reports)} jobs")
        self.notifier.status(result.summary()[:200])
        return result

    def queue_savepoint(self, job: str) -> bool:
        """A savepoint of ``job`` at the start of the next cycle (the API's; it never races a
        cycle's own action); False when one is queued already."""
        with self._queue_lock:
            if job in self._savepoints:
                return False
            self._savepoints[job] = None
            return True

    def _take_queued_savepoints(self, reconciler: Reconciler) -> None:
        """Take the queued savepoints, each audited and fenced as ``flink-gitops savepoint JOB``.
        One that fails for a temporary reason (another operation of the job open, the cluster
        unreachable, the lease lost) stays queued for the next tick; a permanent failure is
        logged and dropped; a stop leaves the rest queued (it dies with the process, said)."""
        with self._queue_lock:
            jobs, self._savepoints = list(self._savepoints), {}
        for n, job in enumerate(jobs):
            if self._stop.is_set():
                logger.warning("stopping: the API's savepoints of {} were not taken", ", ".join(jobs[n:]))
                return
            try:
                path = reconciler.manual_savepoint(job)
            except TemporaryError as exc:
                logger.warning(
                    "job {}: the savepoint asked for by the API waits for the next tick: {}", job, exc
                )
                self.queue_savepoint(job)
                continue
            except FlinkGitOpsError as exc:
                logger.error("job {}: the savepoint asked for by the API was not taken: {}", job, exc)
                continue
            logger.info("job {}: savepoint asked for by the API: {}", job, path)

    def _still_active(self) -> list[Alert]:
        """Without a cycle, nothing is known to have ended: the job and cluster alerts stay."""
        return [
            a for a, _ in self.alerter.state.active.values() if not a.event and not a.key.startswith("git:")
        ]

    def keep_leases(self) -> None:
        """Between cycles, every lease_ttl_s / 3: renew our clusters' leases (and take free ones),
        so a poll interval longer than the lease never loses them. During a cycle its own waits
        renew them; this pass then skips."""
        if self._stop.is_set() or not self._lock.acquire(blocking=False):
            return
        try:
            if self._reconciler is not None and not self._stop.is_set():
                self._reconciler.lead_all()
        except FlinkGitOpsError as exc:
            logger.error("lease renewal failed: {}", exc)
        finally:
            self._lock.release()

    # --- the loop ------------------------------------------------------------------------------

    def trigger(self, why: str) -> None:
        """Run a cycle now (coalesced with one already waiting to run)."""
        logger.info("cycle requested: {}", why)
        self._again.set()
        scheduler = self._scheduler
        if scheduler is not None and scheduler.running:
            job = scheduler.get_job("cycle")
            if job is not None:
                job.modify(next_run_time=datetime.now(UTC))

    def stop(self) -> None:
        self._stop.set()
        reconciler = self._reconciler
        if reconciler is not None:
            reconciler.stopping.set()
        self._wake.set()

    def ask_reload(self) -> None:
        self._reload_asked.set()
        self._wake.set()

    def _apply_reload(self) -> None:
        self._reload_asked.clear()
        try:
            settings = self._reload()
        except FlinkGitOpsError as exc:
            logger.error("config reload refused, the running config stays in force: {}", exc)
            return
        if self._service is not None:
            try:
                self._service.reload(settings.http)
            except FlinkGitOpsError as exc:
                logger.error("config reload refused, the running config stays in force: {}", exc)
                return
        logger.info("config reloaded: it takes effect at the next cycle")
        self._pending = settings
        if self._scheduler is not None:
            self._scheduler.reschedule_job("cycle", trigger=self._trigger(settings))
            every = settings.store.lease_ttl_s / 3
            self._scheduler.reschedule_job("leases", trigger=IntervalTrigger(seconds=every))

    def _trigger(self, settings: Settings) -> IntervalTrigger:
        git = settings.git
        return IntervalTrigger(seconds=git.poll_interval_s, jitter=git.poll_jitter_s or None)

    def _watchdog_alive(self) -> bool:
        """The loop lives: between cycles, or inside one that beat within half the watchdog interval."""
        if not self._in_cycle:
            return True
        limit = (self.notifier.watchdog_s or 60.0) / 2
        return self.clock.monotonic() - self._last_beat < limit

    def run(self) -> int:
        """Until SIGTERM/SIGINT: exit status 0 after a clean stop. The store, audit key, clusters and
        source are opened first: what cannot be opened at the start is an error (raised), never a
        loop that quietly fails every cycle."""
        with self._lock:
            self._open(self.settings)
        service = None
        if self._serve is not None:
            try:
                service = self._serve(self)
            except BaseException:
                with self._lock:
                    self._close()
                raise
            service.start()
        self._service = service
        # a run skipped because the previous one still runs is the design (no overlap), not news
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
        scheduler = BackgroundScheduler(timezone=UTC, job_defaults={"misfire_grace_time": None})
        self._scheduler = scheduler
        scheduler.add_job(
            self.tick,
            self._trigger(self.settings),
            id="cycle",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )
        scheduler.add_job(
            self.keep_leases,
            IntervalTrigger(seconds=self.settings.store.lease_ttl_s / 3),
            id="leases",
            max_instances=1,
            coalesce=True,
        )
        previous = _install_signals(self)
        scheduler.start()
        watcher = Watcher.for_settings(self.settings, self.repo, self.trigger)
        if watcher is not None:
            watcher.start()
        ping_every = min(1.0, (self.notifier.watchdog_s or 2.0) / 4)
        try:
            while not self._stop.is_set():
                self._wake.wait(ping_every)
                self._wake.clear()
                if self._reload_asked.is_set():
                    self._apply_reload()
                if self.notifier.watchdog_s is not None and self._watchdog_alive():
                    self.notifier.watchdog()
        finally:
            self.notifier.stopping("stopping: parking the action in flight")
            if watcher is not None:
                watcher.stop()
            if service is not None:
                service.stop()
            logger.info("stopping: the action in flight parks at its recorded step")
            self.stop()
            scheduler.shutdown(wait=True)
            self.alerter.drain(5.0)
            self.alerter.stop()
            _restore_signals(previous)
            with self._lock:
                if self._reconciler is not None:
                    self._reconciler.release()
                self._close()
        logger.info("stopped after {} cycle(s)", self.cycles)
        return self.exit_code


def _database(settings: Settings) -> tuple[object, ...]:
    """What names the store's database (its lease TTL or replica cap may change on a reload)."""
    store = settings.store
    return (store.url, store.password) if store.url else ("sqlite", settings.state_dir.resolve())


def _install_signals(daemon: Daemon) -> dict[int, Any]:
    def on_term(signum: int, _frame: FrameType | None) -> None:
        logger.info("{} received", signal.Signals(signum).name)
        daemon.stop()

    def on_hup(_signum: int, _frame: FrameType | None) -> None:
        logger.info("SIGHUP received: reloading the config")
        daemon.ask_reload()

    previous: dict[int, Any] = {}
    for sig, handler in ((signal.SIGTERM, on_term), (signal.SIGINT, on_term), (signal.SIGHUP, on_hup)):
        previous[sig] = signal.signal(sig, handler)
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
