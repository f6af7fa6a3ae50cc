"""The daemon's configuration: one YAML file plus environment overrides.

Every field states its unit and default. Secrets are never inline: they are
:class:`~flink_gitops.secrets.SecretRef` (a file or a systemd credential).
Environment variables override the file: ``FLINK_GITOPS_<FIELD>``, nested
with ``__`` (``FLINK_GITOPS_GIT__REF=release``); a mapping or list is given as JSON
(``FLINK_GITOPS_CLUSTERS='{"prod": {"url": "https://flink:8081"}}'``), and a value
that does not parse is a :class:`ConfigError` naming the variable, never quoting
its value (it could hold a secret). With no file at all the
embedded defaults apply: SQLite under ``state_dir`` and one local cluster
``default`` on http://127.0.0.1:8081; ``git.url`` has no default (the daemon
needs one; ``demo`` and ``validate`` read a directory instead).

Each area owns its section model here; neighbours read only their section.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from flink_gitops import cron
from flink_gitops.errors import ConfigError
from flink_gitops.secrets import SecretRef


class _Section(BaseModel):
    # NaN and infinity are no number of seconds (NaN passes every bound; inf: a lease never ends)
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ClusterAuth(_Section):
    """How to authenticate to a Flink REST endpoint (usually a reverse proxy in front of it)."""

    #: none | basic | bearer. Default none.
    kind: Literal["none", "basic", "bearer"] = "none"
    #: basic auth user name (not secret).
    username: str | None = None
    #: basic auth password.
    password: SecretRef | None = None
    #: bearer token.
    token: SecretRef | None = None
    #: send basic/bearer credentials over a plain http:// url (in clear). Default false: the
    #: client refuses it; true only behind a loopback or otherwise trusted hop.
    allow_plain_http: bool = False

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.kind == "basic" and (self.username is None or self.password is None):
            raise ValueError("basic auth needs 'username' and 'password'")
        if self.kind == "bearer" and self.token is None:
            raise ValueError("bearer auth needs 'token'")
        return self


class ClusterTls(_Section):
    #: PEM file of the CA that signed the server certificate; default: system trust store.
    ca_file: Path | None = None
    #: client certificate (PEM) for mutual TLS.
    cert_file: Path | None = None
    #: client private key (PEM) for mutual TLS; a secret, so by reference.
    key: SecretRef | None = None
    #: verify the server certificate. Default true; false only for tests.
    verify: bool = True

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.cert_file is None) != (self.key is None):
            raise ValueError("a client certificate needs both 'cert_file' and 'key'")
        return self


class ClusterConfig(_Section):
    """One Flink session cluster the daemon manages."""

    #: REST base URL. Default http://127.0.0.1:8081.
    url: str = "http://127.0.0.1:8081"
    auth: ClusterAuth = Field(default_factory=ClusterAuth)
    tls: ClusterTls = Field(default_factory=ClusterTls)
    #: per-request timeout, seconds. Default 10.
    request_timeout_s: float = Field(10.0, gt=0)
    #: tries for idempotent calls (GETs, polls), including the first. Default 4.
    max_attempts: int = 4
    #: first backoff delay, seconds; doubles each try with full jitter. Default 0.5.
    backoff_initial_s: float = Field(0.5, ge=0)
    #: backoff ceiling, seconds. Default 10.
    backoff_max_s: float = Field(10.0, ge=0)
    #: consecutive failures that open the circuit breaker. Default 5.
    breaker_threshold: int = 5
    #: how long an open breaker stays open before a trial call, seconds. Default 30.
    breaker_reset_s: float = Field(30.0, ge=0)
    #: how long to wait for a savepoint / stop operation, seconds. Default 600.
    savepoint_timeout_s: float = Field(600.0, gt=0)
    #: cap on the summed parallelism of our live jobs on this cluster, in slots (a start that
    #: would pass it waits; one that alone needs more is refused); null = no cap. Default null.
    max_total_parallelism: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _plain_url(self) -> Self:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError("cluster url must start with http:// or https://")
        if "@" in self.url.split("://", 1)[1].split("/", 1)[0]:
            raise ValueError("cluster url must not hold credentials; use 'auth' with a secret file")
        try:
            parts = urlsplit(self.url)
            parts.port  # noqa: B018 - raises for a port that is no number or out of range
        except ValueError as exc:
            raise ValueError(f"cluster url is not a valid URL ({exc})") from None
        if not parts.hostname:
            raise ValueError("cluster url has no host")
        return self


class SignaturePolicy(_Section):
    """Which commits are trusted. Default: signatures not checked."""

    #: none | gpg | ssh. Default none.
    mode: Literal["none", "gpg", "ssh"] = "none"
    #: gpg: a GNUPGHOME directory holding only the trusted public keys.
    gpg_home: Path | None = None
    #: gpg: allowed key fingerprints (full, hex); empty = any key in gpg_home.
    allowed_fingerprints: list[str] = Field(default_factory=list)
    #: ssh: an allowed_signers file (ssh-keygen(1) format).
    allowed_signers_file: Path | None = None


class GitConfig(_Section):
    """The repository the desired state comes from."""

    #: clone URL (https://, ssh://, git://, file:// or a local path). No default: empty is refused.
    url: str = ""
    #: branch name, tag name, or full commit SHA to track. Default main.
    ref: str = "main"
    #: directory inside the repo that holds the job specs. Default "." (the whole repo).
    path: str = "."
    #: where the clone is cached; default <state_dir>/git.
    cache_dir: Path | None = None
    #: SSH private key for ssh:// remotes.
    ssh_key: SecretRef | None = None
    #: known_hosts file; host keys are always checked for ssh://.
    known_hosts_file: Path | None = None
    #: HTTPS token (sent as the password of user ``token_user``).
    token: SecretRef | None = None
    #: user name that goes with the token. Default x-access-token.
    token_user: str = "x-access-token"  # noqa: S105 - a user name, not a secret
    #: fetch depth for the first clone; 0 = full history. Default 50.
    depth: int = 50
    #: how often to poll, seconds. Default 30.
    poll_interval_s: float = Field(30.0, gt=0)
    #: up to this many seconds of random delay added to each scheduled poll (spreads replicas), default 1.
    poll_jitter_s: float = Field(1.0, ge=0)
    #: timeout for one fetch, seconds. Default 60.
    fetch_timeout_s: float = Field(60.0, gt=0)
    #: a repository on local disk (``run --repo DIR``, or a git.url that is a path or file://) is
    #: watched: a change or commit triggers a cycle at once (read at start). Default true.
    watch: bool = True
    #: accept a new commit that does not descend from the last good one (history rewritten). Default false.
    allow_force_push: bool = False
    signatures: SignaturePolicy = Field(default_factory=SignaturePolicy)


class SpecLimits(_Section):
    """Guards against hostile or broken spec files."""

    #: largest spec file, bytes. Default 1 MiB.
    max_file_bytes: int = 1024 * 1024
    #: most YAML documents in one file. Default 100.
    max_documents: int = 100
    #: deepest nesting of mappings/sequences. Default 32.
    max_depth: int = 32
    #: most YAML nodes in one file (alias expansion counts). Default 100,000.
    max_nodes: int = 100_000


class StoreConfig(_Section):
    """Where state lives. Default: SQLite file <state_dir>/state.db."""

    #: SQLAlchemy URL without a password (postgresql+psycopg://user@host:5432/db); default SQLite.
    url: str | None = None
    #: PostgreSQL password, read from a file or systemd credential.
    password: SecretRef | None = None
    #: leader lease length, seconds, > 0. Default 30.
    lease_ttl_s: float = Field(30.0, gt=0)
    #: most clusters one instance leads while another replica could take the rest (as Argo CD
    #: shards by cluster): beyond it, a free cluster is taken only after it stayed unled for one
    #: lease_ttl_s (no replica with room took it). Clusters, >= 1; default none (one may lead all).
    max_clusters_per_instance: int | None = Field(None, ge=1)
    #: how long a write waits for the database lock (SQLite busy_timeout) and a connection
    #: attempt waits (PostgreSQL connect_timeout), seconds. Default 30.
    busy_timeout_s: float = Field(30.0, gt=0)


class AuditConfig(_Section):
    """Keys for the encrypted audit trail: exactly one source is used."""

    #: key file made by ``flink-gitops keys generate`` (mode 0600). Default <state_dir>/audit.key.
    key_file: Path | None = None
    #: passphrase, stretched with a memory-hard KDF.
    passphrase: SecretRef | None = None
    #: command that prints the key material (a KMS CLI); run without a shell.
    key_command: list[str] | None = None
    #: how long the key command may run, seconds. Default 30.
    key_command_timeout_s: float = Field(30.0, gt=0)
    #: rotate the data key automatically after this many days; null = never. Default null.
    max_key_age_days: float | None = Field(None, gt=0)
    #: file holding the signed chain head outside the database; default <state_dir>/audit.head.
    #: Several hosts appending to one PostgreSQL store must share it (or run ``audit accept-head``
    #: after a failover): a head file more than one record behind stops appends.
    head_file: Path | None = None


class HttpConfig(_Section):
    """The HTTP API served by ``run`` (``service.api``)."""

    #: serve the API inside ``run``. Default true.
    enabled: bool = True
    #: bind address. Default 127.0.0.1 (localhost only).
    host: str = "127.0.0.1"
    #: TCP port; 0 = any free port (logged). Default 8480.
    port: int = Field(8480, ge=0, le=65535)
    #: bearer tokens, one ``role:sha256-hex-of-token`` a line (role viewer or operator; ``#`` comments).
    #: Tokens are stored hashed. Default null: every /api route answers 401.
    tokens: SecretRef | None = None
    #: the shared secret of the Git webhooks (HMAC key, or GitLab's token). Default null: webhooks 401.
    webhook_secret: SecretRef | None = None
    #: largest request body accepted, bytes; a larger one is 413. Default 1048576 (1 MiB).
    max_body_bytes: int = Field(1_048_576, gt=0)
    #: /readyz fails when the last cycle is older than this many poll intervals. Default 3.
    ready_cycle_intervals: float = Field(3.0, gt=0)


class AlertsConfig(_Section):
    """Where alerts go (any, all or none of these); see ``service.alerts``."""

    #: a generic JSON webhook: the URL, from a secret file or credential (it may carry a token).
    webhook: SecretRef | None = None
    #: a Slack incoming-webhook URL, from a secret file or credential (it is a token).
    slack: SecretRef | None = None
    #: the Alertmanager base URL (alerts go to <url>/api/v2/alerts). Default none.
    alertmanager_url: str | None = Field(None, pattern=r"^https?://")
    #: one delivery attempt, seconds. Default 5.
    timeout_s: float = Field(5.0, gt=0)
    #: attempts per message before it is given up (logged). Default 5.
    max_attempts: int = Field(5, ge=1)
    #: first wait between attempts, seconds; doubles per attempt, at most 60. Default 1.
    backoff_s: float = Field(1.0, ge=0)


#: the longest sync window, seconds (a year: longer reads as "always" and is a typo more likely).
MAX_WINDOW_S = 366 * 86400
_EPOCH_2000 = datetime(2000, 1, 1, tzinfo=UTC)
_JOB_GLOB = re.compile(r"^[a-z0-9*?\[\]!.-]{1,253}$")


class SyncWindowConfig(_Section):
    """One sync window (``plan.windows``): when the jobs it applies to may (allow) or may not (deny)
    be acted on. Recovery of a failed job is never held."""

    #: allow | deny. Required.
    kind: Literal["allow", "deny"]
    #: when the window opens: a 5-field cron expression, UTC (``flink_gitops.cron``). Required.
    schedule: str
    #: how long it stays open after each fire time, seconds, > 0 and at most a year. Required.
    #: A number: "3600" (a string) or true is refused, not read as 3600 or 1 second.
    duration_s: float = Field(gt=0, le=MAX_WINDOW_S, strict=True)
    #: job names or fnmatch globs (``orders-*``) it applies to. Default none.
    jobs: list[str] = Field(default_factory=list)
    #: labels (metadata.labels) a job must all carry for it to apply. Default none. With neither
    #: ``jobs`` nor ``labels`` it applies to every job; with both, to a job matching either.
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _valid(self) -> Self:
        try:
            cron.parse(self.schedule)
        except ValueError as exc:
            raise ValueError(f"schedule {self.schedule[:80]!r} is not a cron expression: {exc}") from exc
        if cron.parse(self.schedule).next_after(_EPOCH_2000) is None:
            raise ValueError(f"schedule {self.schedule[:80]!r} never fires")
        for pattern in self.jobs:
            if not _JOB_GLOB.match(pattern):
                raise ValueError(
                    f"jobs: {pattern[:80]!r} is not a job name or glob (lowercase letters, digits, "
                    "'-', '.', and * ? [ ])"
                )
        return self


class SyncConfig(_Section):
    """How the reconciler acts (DESIGN.md "Drift" and "Upgrade")."""

    #: act on spec drift (Git changed); false = only report it. ``sync --once`` always acts. Default true.
    auto: bool = True
    #: stop (with a final savepoint) jobs removed from Git. Default false.
    prune: bool = False
    #: refuse a revision that would prune more than this share of the jobs, 0..1. Default 0.5.
    max_prune_fraction: float = Field(0.5, ge=0.0, le=1.0)
    #: default live-drift policy; a job may override it with ``spec.drift``. Default warn.
    drift: Literal["heal", "warn", "observe"] = "warn"
    #: how long a new job may take until every task runs, seconds. Default 120.
    readiness_timeout_s: float = Field(120.0, gt=0)
    #: a new job counts as stable after a checkpoint completes or this long RUNNING, seconds. Default 10.
    stability_s: float = Field(10.0, ge=0)
    #: last-state upgrades refuse a retained checkpoint older than this, seconds. Default 3600.
    max_checkpoint_age_s: float = Field(3600.0, gt=0)
    #: where savepoints go (Flink target directory); null = the cluster's default. Default null.
    savepoint_dir: str | None = None
    #: first wait after a failed attempt, seconds; doubles per attempt. Default 10.
    backoff_initial_s: float = Field(10.0, gt=0)
    #: longest wait between attempts, seconds. Default 600.
    backoff_max_s: float = Field(600.0, gt=0)
    #: restarts of an unhealthy job allowed per restart_window_s before it is left FAILED. Default 3.
    restart_budget: int = Field(3, ge=0)
    #: the window the restart budget counts in, seconds. Default 3600.
    restart_window_s: float = Field(3600.0, gt=0)
    #: seconds between reads of a running job's checkpoint stats, recording its latest retained
    #: checkpoint (what recovers it after a JobManager without HA lost it); default 60.
    checkpoint_track_s: float = Field(60.0, gt=0)
    #: at most this many such reads per cycle (the longest unread first); 0 turns tracking off; default 50.
    checkpoint_reads_per_cycle: int = Field(50, ge=0)
    #: a scheduled batch run missed (daemon down, previous run still going) is started late,
    #: once for all missed fire times, only while its fire time is at most this long ago;
    #: older ones are skipped and reported. Keep it above git.poll_interval_s. Seconds, default 600.
    missed_run_grace_s: float = Field(600.0, ge=0)
    #: sync windows (``SyncWindowConfig``): deny windows hold the non-urgent actions of their jobs
    #: while open; a job that an allow window applies to is acted on only while one is open.
    #: Default none (always allowed).
    windows: list[SyncWindowConfig] = Field(default_factory=list, max_length=100)


class ArtifactDownload(_Section):
    """How https:// jars are downloaded (only at sync; ``validate`` and ``plan`` never fetch)."""

    #: PEM file of the CA(s) to trust for artifact servers; default: the system trust store.
    ca_file: Path | None = None
    #: largest jar accepted, bytes (a bigger Content-Length or body is refused). Default 512 MiB.
    max_bytes: int = Field(512 * 1024 * 1024, gt=0)
    #: the whole download (connect to last byte) must finish within this, seconds. Default 60.
    timeout_s: float = Field(60.0, gt=0)


#: Why each is denied: the restore path and claim mode are the spec's own fields (initialSavepointPath,
#: checked against savepoint_roots; NO_CLAIM always), so a key must not bypass them (Flink 2.x
#: ``execution.state-recovery.*``, FLIP-406, and the 1.x ``execution.savepoint.*`` names it replaced);
#: checkpoint and savepoint directories decide where state is written and later restored from;
#: jars, classpaths, cached files, python files and user artifacts load code or files from arbitrary
#: locations; class loading order and JVM options change which classes run; ``$internal.*`` are
#: Flink's own (the job id, the application id...).
DENIED_CONFIGURATION_KEYS: tuple[str, ...] = (
    "$internal.*",
    "execution.state-recovery.*",
    "execution.savepoint.*",
    "execution.savepoint-restore-mode",
    "execution.checkpointing.dir",
    "execution.checkpointing.savepoint-dir",
    "state.checkpoints.dir",
    "state.savepoints.dir",
    "state.backend.forst.primary-dir",
    "state.backend.forst.cache.dir",
    "state.backend.rocksdb.localdir",
    "pipeline.jars",
    "pipeline.classpaths",
    "pipeline.cached-files",
    "user.artifacts.*",
    "python.*",
    "classloader.*",
    "env.java.opts*",
    "env.java.home",
    "high-availability.*",
    "security.*",
    "fs.default-scheme",
)


def _default_clusters() -> dict[str, ClusterConfig]:
    return {"default": ClusterConfig()}


class Settings(BaseSettings):
    """All of the daemon's settings."""

    model_config = SettingsConfigDict(
        env_prefix="FLINK_GITOPS_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
    )

    #: directory for the database, the Git cache, the audit head and keys. Default ./state.
    state_dir: Path = Path("state")
    clusters: dict[str, ClusterConfig] = Field(default_factory=_default_clusters)
    git: GitConfig = Field(default_factory=GitConfig)
    spec_limits: SpecLimits = Field(default_factory=SpecLimits)
    #: allow https:// jars without jarSha256 at deploy (then hashed by their bytes each cycle). Default false.
    allow_unpinned_artifacts: bool = False
    #: allow repo jars / file:// jars only under these roots (besides the repo itself). Default none.
    artifact_roots: list[Path] = Field(default_factory=list)
    artifact_download: ArtifactDownload = Field(default_factory=ArtifactDownload)
    #: URI prefixes ``initialSavepointPath`` must lie under (file:///srv/savepoints, s3://bucket/sp),
    #: compared after normalisation; ``sync.savepoint_dir`` is always allowed too. Default none: with
    #: neither set, every initialSavepointPath is refused.
    savepoint_roots: list[str] = Field(default_factory=list)
    #: flinkConfiguration keys a spec may not set (glob patterns, case-insensitive): keys that change
    #: where state is restored from or written to, or where classes and files are loaded from.
    #: Default: DENIED_CONFIGURATION_KEYS; a list given here replaces it.
    denied_configuration_keys: list[str] = Field(default_factory=lambda: list(DENIED_CONFIGURATION_KEYS))
    store: StoreConfig = Field(default_factory=StoreConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    sync: SyncConfig = Field(default_factory=SyncConfig)
    #: the name this instance writes into audit records and leases. Default: the host name.
    instance_name: str | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file (passed as init values); no .env, no secrets dir.
        return (env_settings, init_settings)


def load_settings(path: Path | None) -> Settings:
    """Load the config file (or only the embedded defaults and environment when ``path`` is None)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            raise ConfigError(f"{where}: invalid YAML in config") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: config must be a mapping at the top level")
        data = loaded
    try:
        return Settings(**data)
    except SettingsError as exc:
        raise ConfigError(_env_parse_error(exc)) from exc
    except ValidationError as exc:
        problems = "; ".join(_config_problem(err["loc"], err["msg"]) for err in exc.errors())
        raise ConfigError(f"{path or 'environment'}: invalid config: {problems}") from exc


ENV_PREFIX = "FLINK_GITOPS_"
_FIELD_IN_MESSAGE = re.compile(r'field "([^"]+)"')


def _env_overrides() -> dict[tuple[str, ...], str]:
    """FLINK_GITOPS_* variable names by the settings path they set (lower case, split at ``__``)."""
    out: dict[tuple[str, ...], str] = {}
    for name in os.environ:
        if name.upper().startswith(ENV_PREFIX) and name.upper() != "FLINK_GITOPS_CONFIG":
            out[tuple(name[len(ENV_PREFIX) :].lower().split("__"))] = name
    return out


def _env_var_for(loc: tuple[int | str, ...]) -> str | None:
    """The variable that set ``loc`` (or a section containing it), if one did."""
    wanted = tuple(str(p).lower() for p in loc)
    for key, name in sorted(_env_overrides().items(), key=lambda kv: -len(kv[0])):
        if wanted[: len(key)] == key:
            return name
    return None


def _config_problem(loc: tuple[int | str, ...], msg: str) -> str:
    var = _env_var_for(loc)
    where = ".".join(str(p) for p in loc)
    return f"{where}: {msg}" + (f" (set by {var})" if var else "")


def _env_parse_error(exc: SettingsError) -> str:
    """Which variable holds a value pydantic-settings could not parse (JSON for mappings and lists)."""
    found = _FIELD_IN_MESSAGE.search(str(exc))
    field = found.group(1) if found else None
    candidates = [
        name for key, name in sorted(_env_overrides().items()) if field is None or key[0] == field.lower()
    ]
    # a mapping or list is JSON: blame first the values that look like it
    looks_json = [n for n in candidates if os.environ[n].lstrip().startswith(("{", "["))]
    reasons: list[str] = []
    for name in looks_json or candidates:
        try:
            json.loads(os.environ[name])
        except json.JSONDecodeError as err:  # its msg and pos never quote the value
            reasons.append(f"{name}: not valid JSON ({err.msg} at character {err.pos})")
        except ValueError:
            reasons.append(f"{name}: not valid JSON")
    if not reasons:
        names = ", ".join(candidates) or f"a {ENV_PREFIX}* variable"
        reasons.append(f"{names}: value cannot be parsed")
    section = f" for {field!r}" if field else ""
    return (
        f"environment: invalid config{section}: "
        + "; ".join(reasons)
        + " (mappings and lists are given as JSON)"
    )
