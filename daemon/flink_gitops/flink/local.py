"""A real local Flink session cluster: install Flink, start it, stop it.

Used by ``flink-gitops demo`` and the test fixtures (tests/fixtures/flink.py),
never by the daemon in production (it manages clusters it did not start).

- :func:`ensure_flink` returns a FLINK_HOME for a Flink version, installing it
  once into a cache directory outside the repository (pip wheels for 2.x; for
  1.20.x a home assembled from the libraries sdist and the cp311 wheel).
- :class:`LocalFlinkCluster` runs ``jobmanager.sh`` / ``taskmanager.sh
  start-foreground`` as child processes with a private FLINK_CONF_DIR, private
  loopback ports and private pid/tmp/upload/checkpoint directories, so two
  clusters can run side by side; readiness is asked through
  :class:`flink_gitops.flink.client.FlinkClient` (the only module speaking HTTP).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from flink_gitops.clock import Clock, SystemClock
from flink_gitops.errors import FlinkGitOpsError, PermanentError, TemporaryError

#: The Flink version the demo and most tests run.
DEFAULT_VERSION = "2.3.0"

_DIST_JAR = re.compile(r"flink-dist(?:_[0-9.]+)?-(\d+\.\d+\.\d+)\.jar")
_VERSION_RE = re.compile(r"\d+\.\d+\.\d+")


class LocalFlinkError(PermanentError):
    """Installing or starting a local Flink failed (details and log tails in the message)."""


class LocalFlinkTimeout(TemporaryError):
    """A local cluster did not become ready in time (log tails in the message)."""


# --------------------------------------------------------------------------- install


def flink_version_of(flink_home: Path) -> str | None:
    """The Flink version of a FLINK_HOME, read from its ``lib/flink-dist-*.jar``; None if not a home."""
    lib = flink_home / "lib"
    if not lib.is_dir() or not (flink_home / "bin" / "jobmanager.sh").is_file():
        return None
    for jar in lib.iterdir():
        match = _DIST_JAR.fullmatch(jar.name)
        if match:
            return match.group(1)
    return None


def default_cache_dir() -> Path:
    """$FLINK_GITOPS_FLINK_CACHE, else ~/.cache/flink-gitops."""
    env = os.environ.get("FLINK_GITOPS_FLINK_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "flink-gitops"


def ensure_flink(version: str = DEFAULT_VERSION, cache_dir: Path | None = None) -> Path:
    """Return a FLINK_HOME for ``version``, installing it into the cache on first use.

    $FLINK_HOME wins when it holds that version. Otherwise the home is
    ``<cache>/flink-<version>/pyflink``; a missing one is installed into a
    temporary sibling and renamed into place, under a file lock so parallel
    callers install once.
    """
    if not _VERSION_RE.fullmatch(version):
        raise LocalFlinkError(f"not a Flink version: {version!r}")
    env_home = os.environ.get("FLINK_HOME")
    if env_home and flink_version_of(Path(env_home)) == version:
        return Path(env_home)
    cache = (cache_dir or default_cache_dir()).expanduser().resolve()
    home = cache / f"flink-{version}" / "pyflink"
    if flink_version_of(home) == version:
        return home
    cache.mkdir(parents=True, exist_ok=True)
    with _file_lock(cache / f"flink-{version}.lock"):
        if flink_version_of(home) == version:  # another process finished while we waited
            return home
        final = cache / f"flink-{version}"
        tmp = Path(tempfile.mkdtemp(prefix=f"flink-{version}.", suffix=".tmp", dir=cache))
        try:
            if version.startswith("1."):
                _install_from_sdist(version, tmp)
            else:
                _pip(["install", "--no-deps", "--target", str(tmp), *_pins(version)])
            if flink_version_of(tmp / "pyflink") != version:
                raise LocalFlinkError(f"Flink {version} install in {tmp} produced no usable FLINK_HOME")
            if final.exists():  # a broken earlier install
                shutil.rmtree(final)
            tmp.chmod(0o755)  # mkdtemp made it private
            tmp.rename(final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return home


def _pins(version: str) -> list[str]:
    return [f"apache-flink=={version}", f"apache-flink-libraries=={version}"]


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pip(args: list[str]) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        tail = "\n".join((exc.stderr or "").strip().splitlines()[-10:])
        raise LocalFlinkError(f"pip {' '.join(args)} failed (exit {exc.returncode}):\n{tail}") from exc


def _install_from_sdist(version: str, target: Path) -> None:
    """Assemble a 1.x FLINK_HOME: jars from the libraries sdist, bin/ and conf/ from the cp311 wheel."""
    downloads = target / "download"
    home = target / "pyflink"
    _pip(["download", "--no-deps", "--no-binary=:all:", "--dest", str(downloads), _pins(version)[1]])
    _pip(
        [
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.11",
            "--dest",
            str(downloads),
            _pins(version)[0],
        ]
    )
    sdists = list(downloads.glob("apache_flink_libraries-*.tar.gz")) + list(
        downloads.glob("apache-flink-libraries-*.tar.gz")
    )
    wheels = list(downloads.glob("apache_flink-*.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        raise LocalFlinkError(f"Flink {version} download: expected one sdist and one wheel in {downloads}")
    wanted = ("bin", "lib", "opt", "plugins")
    with tarfile.open(sdists[0]) as tar:
        for member in tar:
            parts = Path(member.name).parts
            # <name>-<version>/deps/<dir>/...
            if len(parts) < 4 or parts[1] != "deps" or parts[2] not in wanted:
                continue
            if not (member.isfile() or member.isdir()):
                continue
            member.name = str(Path(*parts[2:]))
            tar.extract(member, home, filter="data")
    with zipfile.ZipFile(wheels[0]) as whl:
        for name in whl.namelist():
            parts = Path(name).parts
            if len(parts) >= 3 and parts[0] == "pyflink" and parts[1] in ("bin", "conf"):
                whl.extract(name, target)
    for script in (home / "bin").iterdir():
        if script.suffix in (".sh", "") and script.is_file():
            script.chmod(0o755)
    shutil.rmtree(downloads)


# --------------------------------------------------------------------------- cluster

#: How long a process group gets between SIGTERM and SIGKILL, seconds.
_STOP_GRACE_S = 10.0


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``port`` on ``host`` can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class LocalFlinkCluster:
    """One Flink session cluster (a JobManager and a TaskManager) run as our child processes.

    Everything it writes lives under ``workdir``: conf/, log/, pid/, tmp/,
    upload/, checkpoints/, savepoints/. It does not delete ``workdir``; the
    caller owns it. Use as a context manager or call start()/stop(), from a thread
    that outlives the cluster (with setpriv(1) present, the JVMs die with that thread).
    """

    def __init__(
        self,
        flink_home: Path,
        workdir: Path,
        *,
        slots: int = 4,
        refresh_interval_ms: int = 200,
        checkpoint_interval_ms: int = 2000,
        extra_conf: Mapping[str, Any] | None = None,
        clock: Clock | None = None,
        ready_timeout_s: float = 90.0,
        rest_port: int | None = None,
    ) -> None:
        version = flink_version_of(flink_home)
        if version is None:
            raise LocalFlinkError(
                f"{flink_home} is not a FLINK_HOME (no bin/jobmanager.sh, lib/flink-dist-*.jar)"
            )
        self.flink_home = flink_home
        self.version = version
        self.workdir = workdir.resolve()
        self.slots = slots
        self.ready_timeout_s = ready_timeout_s
        self._clock: Clock = clock or SystemClock()
        self.conf_dir = self.workdir / "conf"
        self.log_dir = self.workdir / "log"
        #: file:// checkpoint and savepoint directories (plain paths here).
        self.checkpoint_dir = self.workdir / "checkpoints"
        self.savepoint_dir = self.workdir / "savepoints"
        #: REST port: the given one (the demo asks for 8081) or a free one.
        self.rest_port = rest_port or free_port()
        self.rpc_port = free_port()
        self.blob_port = free_port()
        self.rest_url = f"http://127.0.0.1:{self.rest_port}"
        self._refresh_interval_ms = refresh_interval_ms
        self._checkpoint_interval_ms = checkpoint_interval_ms
        self._extra_conf = dict(extra_conf or {})
        self._jm: subprocess.Popen[bytes] | None = None
        self._tm: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return (
            f"LocalFlinkCluster(version={self.version!r}, rest_url={self.rest_url!r}, workdir={self.workdir})"
        )

    # -- configuration

    def configuration(self) -> dict[str, Any]:
        """The flat Flink configuration this cluster runs with (shipped conf + our overrides)."""
        shipped = self.flink_home / "conf" / "config.yaml"
        try:
            loaded = yaml.safe_load(shipped.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise LocalFlinkError(f"{shipped}: cannot read the shipped Flink configuration") from exc
        conf = _flatten(loaded)
        tmp = self.workdir / "tmp"
        ours: dict[str, Any] = {
            "jobmanager.rpc.address": "127.0.0.1",
            "jobmanager.bind-host": "127.0.0.1",
            "jobmanager.rpc.port": self.rpc_port,
            "taskmanager.host": "127.0.0.1",
            "taskmanager.bind-host": "127.0.0.1",
            "rest.address": "127.0.0.1",
            "rest.bind-address": "127.0.0.1",
            "rest.port": self.rest_port,
            "rest.bind-port": str(self.rest_port),
            "blob.server.port": str(self.blob_port),
            # 0 = an ephemeral port chosen at bind time: never clashes, nobody needs it fixed.
            "taskmanager.rpc.port": "0",
            "taskmanager.data.port": 0,
            "metrics.internal.query-service.port": "0",
            "env.pid.dir": str(self.workdir / "pid"),
            "env.log.dir": str(self.log_dir),
            # -XX:-UsePerfData: no hsperfdata files in the shared /tmp.
            "env.java.opts.jobmanager": f"-XX:-UsePerfData -Djava.io.tmpdir={tmp}",
            "env.java.opts.taskmanager": f"-XX:-UsePerfData -Djava.io.tmpdir={tmp}",
            "io.tmp.dirs": str(tmp),
            "blob.storage.directory": str(tmp / "blob"),
            "web.tmpdir": str(tmp / "web"),
            "web.upload.dir": str(self.workdir / "upload"),
            "web.refresh-interval": self._refresh_interval_ms,
            "execution.checkpointing.dir": self.checkpoint_dir.as_uri(),
            "execution.checkpointing.savepoint-dir": self.savepoint_dir.as_uri(),
            "execution.checkpointing.interval": f"{self._checkpoint_interval_ms} ms",
            "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
            # A TaskManager that reaches the JobManager before its resource manager is up waits
            # error-delay (default 10 s) before trying again: the usual slow start-up.
            "cluster.registration.error-delay": 500,  # ms; a plain number is ms on 1.20 and 2.x
            "cluster.registration.refused-registration-delay": 1000,  # ms
            "taskmanager.numberOfTaskSlots": self.slots,
            "parallelism.default": 1,
            # Two clusters share a 2-core box: modest memory, little managed memory (hashmap state).
            "jobmanager.memory.process.size": "800m",
            "taskmanager.memory.process.size": "1g",
            "taskmanager.memory.managed.fraction": 0.1,
        }
        conf.update(ours)
        conf.update(self._extra_conf)
        return conf

    def _write_conf(self) -> None:
        shipped = self.flink_home / "conf"
        if self.conf_dir.exists():
            shutil.rmtree(self.conf_dir)
        shutil.copytree(shipped, self.conf_dir)
        (self.conf_dir / "flink-conf.yaml").unlink(missing_ok=True)  # 1.x legacy name; config.yaml wins
        text = yaml.safe_dump(self.configuration(), sort_keys=True, default_flow_style=False, width=1 << 20)
        (self.conf_dir / "config.yaml").write_text(
            f"# Written by flink_gitops.flink.local for {self.workdir}\n{text}", encoding="utf-8"
        )
        for sub in ("log", "pid", "tmp", "tmp/web", "upload", "checkpoints", "savepoints"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLINK_", "_FLINK"))}
        env.update(
            FLINK_HOME=str(self.flink_home),
            FLINK_CONF_DIR=str(self.conf_dir),
            FLINK_LOG_DIR=str(self.log_dir),
            FLINK_PID_DIR=str(self.workdir / "pid"),
        )
        return env

    # -- processes

    def _spawn(self, script: str) -> subprocess.Popen[bytes]:
        name = script.removesuffix(".sh")
        command = [str(self.flink_home / "bin" / script), "start-foreground"]
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            # The script execs the JVM, so it inherits this: the JVM dies with the thread that
            # started it, even when our process is SIGKILLed and stop() never runs.
            command = [setpriv, "--pdeathsig", "KILL", *command]
        with (self.log_dir / f"{name}.console").open("ab") as out:
            return subprocess.Popen(
                command,
                cwd=self.workdir,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killpg reaches the JVM and any helper
            )

    def start(self) -> None:
        """Write the configuration, start JobManager and TaskManager, wait until slots are free."""
        if self._jm is not None or self._tm is not None:
            raise LocalFlinkError(f"{self!r} is already started")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_conf()
        try:
            self._jm = self._spawn("jobmanager.sh")
            self._tm = self._spawn("taskmanager.sh")
            self.wait_ready(self.ready_timeout_s)
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, timeout_s: float, *, need_slots: bool = True) -> None:
        """Block until /overview answers (and, with ``need_slots``, shows a TaskManager with free slots)."""
        from flink_gitops.flink.client import FlinkClient  # the one module that speaks HTTP
        from flink_gitops.flink.retry import RetryPolicy

        deadline = self._clock.monotonic() + timeout_s
        last = "no answer yet"
        # one try per probe and no circuit breaker: "not up yet" is the expected answer here
        client = FlinkClient(
            self.rest_url,
            name=f"local-{self.rest_port}",
            clock=self._clock,
            timeout_s=2.0,
            retry=RetryPolicy(max_attempts=1),
            breaker_threshold=1 << 30,
        )
        with client:
            while True:
                for proc, name in ((self._jm, "jobmanager"), (self._tm, "taskmanager")):
                    if proc is not None and proc.poll() is not None:
                        raise LocalFlinkError(
                            f"Flink {self.version} {name} exited with {proc.returncode} during start-up"
                            f"\n{self.log_tails()}"
                        )
                try:
                    overview = client.overview()
                except FlinkGitOpsError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                else:
                    last = f"taskmanagers={overview.taskmanagers} slots-available={overview.slots_available}"
                    if not need_slots or (overview.taskmanagers > 0 and overview.slots_available > 0):
                        return
                if self._clock.monotonic() >= deadline:
                    raise LocalFlinkTimeout(
                        f"Flink {self.version} at {self.rest_url} not ready after {timeout_s:.0f} s ({last})"
                        f"\n{self.log_tails()}"
                    )
                self._clock.sleep(0.2)

    def log_tails(self, lines: int = 30) -> str:
        """The last lines of every JobManager/TaskManager log, for error messages."""
        parts = []
        for path in sorted(self.log_dir.glob("*")):
            if path.suffix in (".log", ".out", ".console") and path.is_file():
                parts.append(f"--- {path.name}\n{_tail(path, lines)}")
        return "\n".join(parts)

    def kill_jobmanager(self) -> None:
        """SIGKILL the JobManager (a crash without HA); the TaskManager keeps running."""
        self._terminate(self._jm, signal.SIGKILL)
        self._jm = None

    def start_jobmanager(self, *, timeout_s: float | None = None, need_slots: bool = True) -> None:
        """Start the JobManager again (same ports and directories) and wait for it."""
        if self._jm is not None and self._jm.poll() is None:
            raise LocalFlinkError("the JobManager is still running")
        self._jm = self._spawn("jobmanager.sh")
        self.wait_ready(self.ready_timeout_s if timeout_s is None else timeout_s, need_slots=need_slots)

    def processes(self) -> dict[str, int]:
        """PIDs of the running children, by role."""
        running = {}
        for proc, name in ((self._jm, "jobmanager"), (self._tm, "taskmanager")):
            if proc is not None and proc.poll() is None:
                running[name] = proc.pid
        return running

    def _terminate(self, proc: subprocess.Popen[bytes] | None, sig: signal.Signals = signal.SIGTERM) -> None:
        """Signal a child's process group, wait, SIGKILL leftovers."""
        if proc is None:
            return
        pgid = proc.pid  # start_new_session: the child leads its own group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        try:
            proc.wait(timeout=_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            proc.wait()
        # helpers that outlived the leader (e.g. a config-parsing JVM of a failed start) go too
        deadline = time.monotonic() + _STOP_GRACE_S
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                break
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop both processes: SIGTERM, wait up to 10 s, then SIGKILL. No JVM survives."""
        self._terminate(self._tm)
        self._tm = None
        self._terminate(self._jm)
        self._jm = None

    def __enter__(self) -> LocalFlinkCluster:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
