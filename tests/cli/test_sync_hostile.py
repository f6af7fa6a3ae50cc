"""Hostile and broken input for `sync --once`, `status`, `savepoint` and `history`, through the real CLI.

Each case runs ``python -m flink_gitops`` as a subprocess, without a Flink cluster: the cluster
URL is a loopback port that is bound but never listens (connections are refused), or a FAKE
Flink REST API (:class:`FakeFlink`, below) that answers only the reads a cycle makes before
it acts (``/config``, an empty ``/jobs/overview``, so job ``a`` is planned for a deploy, ``/overview``
with free slots, ``/jobmanager/config``) and
records every request, so "no action was taken" is something the test can see. Every run: no
traceback, no line longer than ``clirun.MAX_LINE``, never exit 0 on something broken, and the
secret below never printed. Runs that need a file the CLI cannot read drop root (setpriv to
nobody, as test_unreadable.py does).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from flink_gitops.clock import SystemClock
from flink_gitops.execute.procedures import RunSpec
from flink_gitops.record.audit import AuditTrail
from flink_gitops.record.store import JobLifecycle, JobUpdate, SpecRecord, cluster_lease, open_store
from flink_gitops.settings import Settings
from flink_gitops.source.tree import DirectoryTree
from flink_gitops.specs.loader import DesiredJob, SpecLoader
from tests.cli.clirun import Run, cli, drops_to_nobody, open_tempdir, remove_tree, unprivileged_prefix
from tests.specs.helpers import spec_yaml, write_repo

SECRET = "hunter2-do-not-print"
NOBODY = 65534
LONG = "x" * 10_240
CONTROL = "a\x1b[31mb\nc\x07d"
#: a savepoint path and an error as Flink or a filesystem could word them: brackets, escapes.
HOSTILE_TEXT = 'boom [/red] \x1b[31m "quoted" \u2028 [bold]x [/tmp/sp-1]'


# --- the world: a closed port, a fake Flink, a state directory with a key -----------------------


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    """A loopback port bound by us and never listened on: every connection is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


class FakeFlink:
    """A FAKE Flink REST API: GET /config, an empty GET /jobs/overview, GET /overview and
    GET /jobmanager/config; anything else is answered 500 and kept in ``requests`` (a jar upload,
    a run, a savepoint: an action taken)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                path = self.path.split("?", 1)[0]
                fake.requests.append((self.command, path))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                bodies = {
                    "/config": {"refresh-interval": 3000, "flink-version": "2.3.0", "features": {}},
                    "/jobs/overview": {"jobs": []},
                    "/overview": {"taskmanagers": 1, "slots-total": 4, "slots-available": 4},
                    "/jobmanager/config": [{"key": "parallelism.default", "value": "1"}],
                }
                status, body = (200, bodies[path]) if self.command == "GET" and path in bodies else (500, {})
                data = json.dumps(body or {"errors": ["fake: not answered"]}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def actions(self) -> list[tuple[str, str]]:
        reads = ("/config", "/jobs/overview", "/overview", "/jobmanager/config")
        return [r for r in self.requests if r[0] != "GET" or r[1] not in reads]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flink() -> Iterator[FakeFlink]:
    fake = FakeFlink()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def template() -> Iterator[Path]:
    """A state directory with an audit key and a migrated store (copied for each test)."""
    top = open_tempdir("fg-sync-template-")
    state = top / "state"
    run = cli("keys", "generate", home=top, env={"FLINK_GITOPS_STATE_DIR": str(state)})
    assert run.code == 0, run.err
    settings = Settings(state_dir=state)
    with open_store(settings) as store:  # migrated, and the audit head file written (seq 0)
        AuditTrail.from_settings(settings, store, clock=SystemClock(), actor="test:template")
    yield state
    remove_tree(top)


@dataclass
class World:
    top: Path
    state: Path
    repo: Path
    cluster_url: str
    env: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, env: dict[str, str] | None = None, prefix: list[str] | None = None) -> Run:
        base = {
            "FLINK_GITOPS_STATE_DIR": str(self.state),
            "FLINK_GITOPS_CLUSTERS": json.dumps({"default": {"url": self.cluster_url, "max_attempts": 1}}),
        }
        run = cli(*args, home=self.top, env=base | self.env | (env or {}), prefix=prefix)
        run.assert_clean()
        assert SECRET not in run.out + run.err
        return run

    def sync(self, *args: str, **kw: Any) -> Run:
        return self.run("sync", "--once", "--repo", str(self.repo), *args, **kw)

    def settings(self) -> Settings:
        return Settings(state_dir=self.state)

    def tables(self) -> dict[str, list[str]]:
        """Every row of every table of the SQLite store."""
        with sqlite3.connect(self.state / "state.db") as conn:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {n: sorted(repr(r) for r in conn.execute(f'SELECT * FROM "{n}"')) for n in names}

    def seed_job(self, name: str = "a", *, savepoint: str | None = None, error: str | None = None) -> None:
        """A job recorded as STABLE on cluster default, running Flink job 00…01."""
        with open_store(self.settings()) as store:
            lease_name = cluster_lease("default")
            lease = store.leases.acquire("seed", 30, name=lease_name)
            assert lease is not None
            store.jobs.create(name, "default", epoch=lease.epoch, lease=lease_name, file=f"jobs/{name}.yaml")
            desired = SpecLoader.from_settings(self.settings()).load(DirectoryTree(self.repo)).jobs[name]
            assert isinstance(desired, DesiredJob)
            record = RunSpec.of(desired, None).to_record()
            spec = SpecRecord(record, desired.spec_hash, None, desired.jar_digest)
            change = JobUpdate(
                state=JobLifecycle.STABLE,
                flink_job_id="0" * 31 + "1",
                last_reconciled=spec,
                last_stable=spec,
                savepoint=savepoint,
                last_error=error,
            )
            store.jobs.update(name, change, epoch=lease.epoch, lease=lease_name)
            store.leases.release(lease)


@pytest.fixture
def top() -> Iterator[Path]:
    path = open_tempdir("fg-sync-hostile-")
    yield path
    remove_tree(path)


def _world(top: Path, template: Path, url: str) -> World:
    state = top / "state"
    shutil.copytree(template, state)
    repo = write_repo(top / "repo", {"jobs/a.yaml": spec_yaml("a")})
    return World(top, state, repo, url)


@pytest.fixture
def world(top: Path, template: Path, closed_port: int) -> World:
    """Cluster ``default`` refuses connections."""
    return _world(top, template, f"http://127.0.0.1:{closed_port}")


@pytest.fixture
def live(top: Path, template: Path, flink: FakeFlink) -> World:
    """Cluster ``default`` is the fake: reachable, empty, so job ``a`` is planned for a deploy."""
    return _world(top, template, flink.url)


@pytest.fixture(scope="module")
def drop() -> list[str]:
    prefix = unprivileged_prefix()
    if prefix is None:
        pytest.skip("running as root and neither setpriv nor unshare --user can drop the privilege")
    return prefix


def _give_to_nobody(path: Path) -> None:
    """Let the unprivileged runs write ``path`` (needed only when they run as another user)."""
    if os.geteuid() != 0 or not drops_to_nobody():
        return
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [*dirnames, *filenames]:
            os.chown(os.path.join(dirpath, name), NOBODY, NOBODY)
    os.chown(path, NOBODY, NOBODY)


def _one_error_line(run: Run, *expect: str) -> None:
    """Each expected text on one line of stderr (one line per reason, not a wrapped paragraph)."""
    lines = run.err.splitlines()
    for text in expect:
        assert any(text in line for line in lines), (text, run.err[-2000:])


# --- the corpus: argument, repository and environment problems -----------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    code: int
    expect: tuple[str, ...]
    setup: Callable[[World], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    #: run without root's privileges (the case is about a file the CLI cannot read or write).
    unprivileged: bool = False


def _broken_only(w: World) -> None:
    (w.repo / "jobs/a.yaml").unlink()
    (w.repo / "jobs/b.yaml").write_text("a: [unclosed\n")


def _broken_too(w: World) -> None:
    (w.repo / "jobs/b.yaml").write_text("a: [unclosed\n")


def _locked_jobs_dir(w: World) -> None:
    _give_to_nobody(w.state)
    (w.repo / "jobs").chmod(0)


def _locked_repo(w: World) -> None:
    _give_to_nobody(w.state)
    w.repo.chmod(0)


def _read_only_store(w: World) -> None:
    """The state directory and its files are 0555 / 0444: readable, not writable, by the runs."""
    w.state.chmod(0o555)
    for path in w.state.iterdir():
        path.chmod(0o444)


def _state_under_read_only(w: World) -> None:
    (w.top / "ro").mkdir(mode=0o555)
    w.env["FLINK_GITOPS_STATE_DIR"] = str(w.top / "ro/state")


def _garbage_db(w: World) -> None:
    (w.state / "state.db").write_bytes(b"not a database" * 500)


def _torn_db(w: World) -> None:
    db = w.state / "state.db"
    data = bytearray(db.read_bytes())
    data[8192:] = bytes((i * 7) & 0xFF for i in range(len(data) - 8192))
    db.write_bytes(bytes(data))


def _key_0644(w: World) -> None:
    (w.state / "audit.key").chmod(0o644)


def _key_missing(w: World) -> None:
    (w.state / "audit.key").unlink()


R = "{repo}"  # replaced by the world's repository


def _git_url(url: str) -> Callable[[World], None]:
    def setup(w: World) -> None:
        port = w.cluster_url.rsplit(":", 1)[1]
        w.env["FLINK_GITOPS_GIT__URL"] = url.replace("{port}", port).replace(R, str(w.repo))

    return setup


def _bearer_token(w: World) -> None:
    token = w.top / "token"
    token.write_text(SECRET + "\n")
    token.chmod(0o600)
    auth = {"kind": "bearer", "token": {"file": str(token)}, "allow_plain_http": True}
    w.env["FLINK_GITOPS_CLUSTERS"] = json.dumps({"default": {"url": w.cluster_url, "auth": auth}})


STATE = "{state}"  # and by its state directory
HISTORY = ("history", "x")
SYNC = ("sync", "--once", "--repo", R)
REFUSED = "could not be observed (FlinkNotSent"

CASES = [
    Case("no-repository", ("sync", "--once"), 2, ("no repository: set git.url in the config, or pass",)),
    Case(
        "git-refuses",
        ("sync", "--once"),
        2,
        ("no revision of git://127.0.0.1:", "Connection refused"),
        _git_url("git://127.0.0.1:{port}/jobs.git"),
    ),
    Case(
        "git-url-with-credentials",
        ("sync", "--once"),
        2,
        ("carries credentials",),
        _git_url("https://user:" + SECRET + "@127.0.0.1:{port}/jobs.git"),
    ),
    Case(
        "git-url-not-a-repo", ("sync", "--once"), 2, ("does not appear to be a git repository",), _git_url(R)
    ),
    Case(
        "cluster-token-never-printed",
        SYNC,
        1,
        ("a: unknown: no action: cluster 'default' " + REFUSED,),
        _bearer_token,
    ),
    Case("without-once", ("sync", "--repo", R), 2, ("sync needs --once",)),
    Case("repo-is-a-file", ("sync", "--once", "--repo", R + "/jobs/a.yaml"), 2, ("a.yaml' is a file",)),
    Case("repo-missing", ("sync", "--once", "--repo", R + "/nowhere"), 2, ("nowhere' does not exist",)),
    Case("repo-unreadable", SYNC, 2, ("is not readable",), _locked_repo, unprivileged=True),
    Case(
        "spec-dir-unreadable",
        SYNC,
        1,
        ("jobs: error: cannot read directory: Permission denied",),
        _locked_jobs_dir,
        unprivileged=True,
    ),
    Case("only-a-broken-spec", SYNC, 1, ("jobs/b.yaml:2:1: error: YAML syntax error",), _broken_only),
    Case(
        "job-of-a-broken-file",
        (*SYNC, "--job", "b"),
        2,
        ("jobs/b.yaml:2:1: error: YAML syntax error", "--job 'b': no job of that name", "may define it"),
        _broken_too,
    ),
    Case("cluster-refuses", SYNC, 1, ("a: unknown: no action: cluster 'default' " + REFUSED,)),
    Case("cluster-refuses-dry-run", (*SYNC, "--dry-run"), 1, ("a: unknown: no action",)),
    Case("job-not-in-git", (*SYNC, "--job", "nope"), 2, ("--job 'nope': no job of that name",)),
    Case("job-control-chars", (*SYNC, "--job", CONTROL), 2, ("--job 'a\\x1b[31mb\\nc\\x07d'",)),
    Case("job-10kb", (*SYNC, "--job", LONG), 2, ("… (10240 characters)",)),
    Case("status-unknown", ("status", "nope"), 2, ("no job named 'nope' is recorded",)),
    Case("history-unknown", ("history", "nope"), 2, ("no job named 'nope' is recorded",)),
    Case("savepoint-unknown", ("savepoint", "nope"), 2, ("no job named 'nope' is recorded",)),
    Case("restart-unknown", ("restart", "nope", "--repo", R), 2, ("no job named 'nope' is recorded",)),
    Case("run-no-repository", ("run",), 2, ("no repository: set git.url",)),
    Case("run-repo-missing", ("run", "--repo", R + "/nowhere"), 2, ("nowhere' does not exist",)),
    Case("run-store-garbage", ("run", "--repo", R), 2, ("file is not a database",), _garbage_db),
    Case("run-key-0644", ("run", "--repo", R), 2, ("audit.key has mode 0644",), _key_0644),
    Case(
        "run-git-url-with-credentials",
        ("run",),
        2,
        ("carries credentials",),
        _git_url("https://user:" + SECRET + "@127.0.0.1:{port}/jobs.git"),
    ),
    Case("restart-no-repository", ("restart", "a"), 2, ("no repository: set git.url",)),
    Case("restart-repo-missing", ("restart", "a", "--repo", R + "/nowhere"), 2, ("nowhere' does not exist",)),
    Case("restart-control-chars", ("restart", CONTROL, "--repo", R), 2, ("'a\\x1b[31mb\\nc\\x07d'",)),
    Case("restart-10kb", ("restart", LONG, "--repo", R), 2, ("… (10240 characters) is recorded",)),
    *(
        Case(f"{cmd}-control-chars", (cmd, CONTROL), code, ("'a\\x1b[31mb\\nc\\x07d'",))
        for cmd, code in (("status", 2), ("history", 2), ("savepoint", 2))
    ),
    *(
        Case(f"{cmd}-10kb", (cmd, LONG), code, ("… (10240 characters) is recorded",))
        for cmd, code in (("status", 2), ("history", 2), ("savepoint", 2))
    ),
    *(
        Case(f"{cmd}-key-{problem}", args, 2, (named,), setup)
        for cmd, args in (
            ("sync", SYNC),
            ("dry-run", (*SYNC, "--dry-run")),
            ("history", ("history", "a")),
            ("restart", ("restart", "a", "--repo", R)),
        )
        for problem, named, setup in (
            ("0644", "audit.key has mode 0644", _key_0644),
            ("missing", "cannot open audit key file", _key_missing),
        )
    ),
    *(
        Case(
            f"{cmd}-store-read-only",
            args,
            2,
            ("cannot open the SQLite store",),
            _read_only_store,
            unprivileged=True,
        )
        for cmd, args in (("sync", SYNC), ("status", ("status",)))
    ),
    *(
        Case(
            f"{cmd}-state-dir-not-creatable",
            args,
            2,
            ("ro/state",),
            _state_under_read_only,
            unprivileged=True,
        )
        for cmd, args in (("sync", SYNC), ("status", ("status",)))
    ),
    *(
        Case(
            f"{cmd}-store-{kind}", args, 2, (f"cannot open the SQLite store {STATE}/state.db: {why}",), setup
        )
        for cmd, args in (
            ("sync", SYNC),
            ("status", ("status", "--output", "json")),
            ("history", HISTORY),
            ("restart", ("restart", "a", "--repo", R)),
        )
        for kind, why, setup in (
            ("garbage", "file is not a database", _garbage_db),
            ("torn", "database disk image is malformed", _torn_db),
        )
    ),
    Case(
        "store-url-under-proc",
        ("status",),
        2,
        ("/proc/nowhere/state.db",),
        env={"FLINK_GITOPS_STORE__URL": "sqlite:////proc/nowhere/state.db"},
    ),
    *(
        Case(
            f"{cmd}-malformed-json-override",
            args,
            2,
            ("FLINK_GITOPS_CLUSTERS: not valid JSON",),
            env={"FLINK_GITOPS_CLUSTERS": "{" + SECRET},
        )
        for cmd, args in (
            ("sync", SYNC),
            ("status", ("status",)),
            ("savepoint", ("savepoint", "a")),
            ("history", ("history", "a")),
        )
    ),
    Case(
        "huge-override",
        SYNC,
        2,
        ("FLINK_GITOPS_SYNC__READINESS_TIMEOUT_S",),
        env={"FLINK_GITOPS_SYNC__READINESS_TIMEOUT_S": SECRET * 3_000},
    ),
    Case("no-clusters", SYNC, 1, ("a: invalid",), env={"FLINK_GITOPS_CLUSTERS": "{}"}),
    Case(
        "cluster-url-unparsable",
        SYNC,
        2,
        ("clusters.default", "(set by FLINK_GITOPS_CLUSTERS)"),
        env={"FLINK_GITOPS_CLUSTERS": '{"default": {"url": "http://[::1"}}'},
    ),
    Case(
        "cluster-port-out-of-range",
        SYNC,
        2,
        ("clusters.default", "(set by FLINK_GITOPS_CLUSTERS)"),
        env={"FLINK_GITOPS_CLUSTERS": '{"default": {"url": "http://127.0.0.1:99999"}}'},
    ),
    Case(
        "lease-ttl-zero",
        SYNC,
        2,
        ("store.lease_ttl_s", "FLINK_GITOPS_STORE__LEASE_TTL_S"),
        env={"FLINK_GITOPS_STORE__LEASE_TTL_S": "0"},
    ),
    Case(
        "store-password-in-url",
        SYNC,
        2,
        ("contains a password",),
        env={"FLINK_GITOPS_STORE__URL": f"postgresql://u:{SECRET}@127.0.0.1:1/db"},
    ),
]


def _fill(text: str, w: World) -> str:
    return text.replace(R, str(w.repo)).replace("{state}", str(w.state))


def test_corpus_size() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_a_clear_refusal(case: Case, world: World, request: pytest.FixtureRequest) -> None:
    prefix = request.getfixturevalue("drop") if case.unprivileged else None
    if case.setup is not None:
        case.setup(world)
    world.env |= case.env
    run = world.run(*(_fill(a, world) for a in case.args), prefix=prefix)
    assert run.code == case.code, run.out + run.err
    _one_error_line(run, *(_fill(e, world) for e in case.expect))
    assert "\x1b" not in run.out + run.err  # a job name's escape sequence never reaches the terminal
    if case.code != 0:
        assert "in sync" not in run.out.splitlines()


# --- an unreachable cluster: unknown, never missing, nothing recorded as failed --------------------


def test_a_refusing_cluster_leaves_recorded_jobs_as_they_are(world: World) -> None:
    world.seed_job("a")
    before = world.tables()
    run = world.sync()
    assert run.code == 1
    [line] = [x for x in run.err.splitlines() if x.startswith("a: ")]
    assert line.startswith("a: unknown: no action: cluster 'default' could not be observed")
    assert "missing" not in run.out + run.err
    after = world.tables()
    for table in ("jobs", "operations", "savepoints", "audit_records", "lease"):
        assert after[table] == before[table], table
    status = json.loads(world.run("status", "--output", "json").out)
    assert [(j["job"], j["lifecycle"], j["attempts"], j["lastError"]) for j in status] == [
        ("a", "stable", 0, None)
    ]


def test_a_manual_savepoint_on_a_refusing_cluster_fails_with_one_line(world: World) -> None:
    world.seed_job("a")
    run = world.run("savepoint", "a")
    assert run.code == 2
    errors = [x for x in run.err.splitlines() if x.startswith("error: ")]
    assert len(errors) == 1, run.err
    assert "savepoint of job 'a' failed" in errors[0]
    assert run.out == ""


def test_a_manual_savepoint_of_a_job_with_an_open_operation_is_refused_and_changes_nothing(
    world: World,
) -> None:
    world.seed_job("a")
    with open_store(world.settings()) as store:
        lease = store.leases.acquire("seed", 30, name=cluster_lease("default"))
        assert lease is not None
        store.operations.begin(
            "a", "upgrade", {"why": "parked"}, epoch=lease.epoch, lease=cluster_lease("default")
        )
        store.leases.release(lease)
    before = world.tables()
    run = world.run("savepoint", "a")
    assert run.code == 2
    assert "job 'a' has an open upgrade operation (at step begin): nothing was done" in run.err
    after = world.tables()
    for table in ("jobs", "operations", "savepoints", "audit_records"):
        assert after[table] == before[table], table


# --- output that must stay intact whatever the recorded text holds ----------------------------------


def test_restart_on_a_refusing_cluster_forgets_the_failure_audited_and_acts_on_nothing(
    live: World, flink: FakeFlink
) -> None:
    live.seed_job("a", error=HOSTILE_TEXT)
    before = len(flink.requests)
    run = live.run("restart", "a", "--repo", str(live.repo))
    assert run.code == 1, run.err
    assert "a: failure forgotten" in run.err
    assert "\x1b" not in run.err, "recorded text is shown escaped"
    audit = live.run("audit", "show", "--job", "a", "--output", "jsonl")
    assert '"job.restart"' in audit.out
    assert all(method == "GET" for method, _ in flink.requests[before:]), flink.requests[before:]


def test_status_json_is_valid_json_with_hostile_text(world: World) -> None:
    world.seed_job("a", savepoint="file:///tmp/[/sp]", error=HOSTILE_TEXT)
    run = world.run("status", "--output", "json")
    assert run.code == 0
    [job] = json.loads(run.out)
    assert job["lastError"] == HOSTILE_TEXT
    assert job["savepoint"] == "file:///tmp/[/sp]"
    one = world.run("status", "a", "--output", "json")
    assert json.loads(one.out) == [job]
    assert json.loads(world.run("status", "--output", "json", env={"FLINK_GITOPS_CLUSTERS": "{}"}).out)


@pytest.mark.parametrize("command", [("status",), ("status", "a"), ("history", "a")])
def test_tables_show_recorded_text_as_text(world: World, command: tuple[str, ...]) -> None:
    """Brackets in a savepoint path or an error are not rich markup (a '[/x]' used to crash)."""
    world.seed_job("a", savepoint="file:///tmp/[/sp]", error=HOSTILE_TEXT)
    run = world.run(*command, env={"COLUMNS": "400"})  # wide: no cell is wrapped
    assert run.code == 0, run.err
    assert "\x1b" not in run.out
    if command[0] == "status":
        assert "file:///tmp/[/sp]" in run.out
        assert 'boom [/red] \\x1b[31m "quoted" \\u2028 [bold]x [/tmp/sp-1]' in run.out


# --- the audit fails closed: no key, a lagging head → no action, and why -----------------------------


@pytest.mark.parametrize("dry_run", [False, True], ids=["sync", "dry-run"])
@pytest.mark.parametrize("setup", [_key_0644, _key_missing], ids=["key-0644", "key-missing"])
def test_an_unusable_key_takes_no_action(
    live: World, flink: FakeFlink, setup: Callable[[World], None], dry_run: bool
) -> None:
    setup(live)
    before = live.tables()
    run = live.sync(*(["--dry-run"] if dry_run else []))
    assert run.code == 2
    assert run.err.startswith("error: ")
    assert "audit key file" in run.err
    assert flink.actions() == []
    assert live.tables() == before


def test_a_lagging_audit_head_takes_no_action_and_says_why(live: World, flink: FakeFlink) -> None:
    head = live.state / "audit.head"
    old = head.read_bytes()
    for _ in range(2):
        assert live.run("keys", "rotate").code == 0
    head.write_bytes(old)  # a restored backup: two records behind
    before = live.tables()
    run = live.sync()
    assert run.code == 2
    _one_error_line(run, "more than the one in-flight record behind", "audit accept-head --reason")
    assert flink.actions() == []
    assert live.tables() == before
    assert head.read_bytes() == old


# --- dry run: plans against the live cluster, changes nothing ----------------------------------------


def test_dry_run_changes_nothing(live: World, flink: FakeFlink) -> None:
    """Reads only: no Flink request beyond the overview, no row in any table (no cycle row either:
    a dry run is not a reconcile that happened), the audit head untouched."""
    head = (live.state / "audit.head").read_bytes()
    before = live.tables()
    run = live.sync("--dry-run")
    assert run.code == 1  # something to do: not in sync
    assert "a: pending: new job" in run.err.splitlines(), run.err
    assert flink.actions() == []
    assert ("GET", "/jobs/overview") in flink.requests
    assert live.tables() == before
    assert (live.state / "audit.head").read_bytes() == head
    assert not (live.state / "jars").exists() or not any((live.state / "jars").iterdir())


def test_an_audit_head_that_cannot_be_advanced_stops_the_cycle_before_any_action(
    live: World, flink: FakeFlink, drop: list[str]
) -> None:
    """The intent is written to the store but its head file cannot follow (a read-only directory):
    the action is not taken, the cycle stops and says why; the next run sees only the in-flight lag."""
    assert live.run("keys", "rotate").code == 0  # one record, so opening the trail writes nothing
    heads = live.top / "heads"
    heads.mkdir()
    shutil.copy2(live.state / "audit.head", heads / "audit.head")
    (heads / "audit.head").chmod(0o444)  # readable, not writable, by the unprivileged run
    heads.chmod(0o555)
    _give_to_nobody(live.state)
    live.env["FLINK_GITOPS_AUDIT__HEAD_FILE"] = str(heads / "audit.head")
    run = live.sync(prefix=drop)
    assert run.code == 1, run.out + run.err
    assert "aborted: audit trail unavailable" in run.out
    _one_error_line(
        run, "a: deploy failed: not taken:", f"head file {heads / 'audit.head'} could not be updated"
    )
    assert flink.actions() == []
    assert [j["job"] for j in json.loads(live.run("status", "--output", "json").out)] == []
