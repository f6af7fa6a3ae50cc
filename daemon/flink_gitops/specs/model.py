"""The job spec schema: pydantic models are the single source (JSON Schema in ``schemas/`` is generated).

:class:`FlinkJob` (``flink-gitops/v1``) is the internal model every other stage
uses. :class:`FlinkSessionJob` accepts the Kubernetes operator's
``flink.apache.org/v1beta1`` manifests unchanged and converts them with
:meth:`FlinkSessionJob.to_flinkjob`, so both kinds hash the same when they mean
the same. Attribute names are the YAML keys (camelCase), so validation error
locations are YAML paths. Every leaf field of :class:`FlinkJob` declares its
change class (:class:`Change`) next to its definition: ``Annotated[T, Change.X]``.
Neighbours: ``specs.changes`` (reads the classes), ``specs.hashing``,
``specs.loader`` (validates documents), ``specs.schema`` (writes JSON Schema).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import IntEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from flink_gitops import cron
from flink_gitops.specs.errors import quote


class Change(IntEnum):
    """How much a change to a field disturbs the running job (ordered; several changes take the max).

    IGNORE: recorded only (labels, retention, how to upgrade next time).
    SAVEPOINT: take a savepoint (or checkpoint), no redeploy.
    SCALE: only the parallelism changed; an upgrade by upgradeMode with new parallelism.
    UPGRADE: what the job runs changed (jar bytes, entry class, args, config, cluster).
    REDEPLOY: a redeploy nonce was bumped: redeploy from the chosen or the latest savepoint.
    STATE: running <-> suspended. It sorts highest because it decides everything else:
    a suspend stops the job with a savepoint whatever else changed (other changes
    wait for the resume), and a resume starts the job from that savepoint with the
    spec as it is then, which already contains every other change.
    """

    IGNORE = 0
    SAVEPOINT = 1
    SCALE = 2
    UPGRADE = 3
    REDEPLOY = 4
    STATE = 5

    @property
    def label(self) -> str:
        return self.name.lower()

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["x-change-class"] = self.label
        return schema


# --- small value types -------------------------------------------------------------------------

# Schema patterns end in "(?!\n)$": ECMA-262 "$" is the end of the text, but Python's (which the
# jsonschema library uses) also matches before a final newline; the lookahead makes both mean
# the same, so that "demo\n" is refused by the schema in every validator, as by the model.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(?!\n)$"


def _dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            f"{quote(value)} is not a lowercase DNS label (RFC 1123): use a-z, 0-9 and '-', "
            "start and end with a letter or digit, at most 63 characters"
        )
    return value


DnsLabel = Annotated[
    str,
    AfterValidator(_dns_label),
    WithJsonSchema({"type": "string", "pattern": DNS_LABEL_PATTERN, "maxLength": 63}),
]

#: the model and the JSON Schema accept the same text: ASCII digits and a unit, nothing around them.
_DURATION = re.compile(r"([0-9]+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION_PATTERN = r"^[0-9]+[smhd](?!\n)$"


def parse_duration(value: object) -> object:
    """``"90s"``, ``"5m"``, ``"12h"``, ``"7d"`` or a whole number of seconds → seconds (int)."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like 90s, 5m, 12h, 7d")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return value
    if isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match is None:
            raise ValueError(
                f"{quote(value)} is not a duration: write a whole number and s, m, h or d (e.g. 7d)"
            )
        return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise ValueError("a duration is a number of seconds or text like 90s, 5m, 12h, 7d")


#: seconds; written as an int or "90s" / "5m" / "12h" / "7d".
Duration = Annotated[
    int,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": DURATION_PATTERN}]}
    ),
]


#: any instant works: a day that exists comes within cron.SEARCH_DAYS of it (Feb 29 too).
_CRON_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(
            f"a schedule is a 5-field cron expression (minute hour day month weekday), got {quote(value)}"
        )
    if not _CRON.search(value):
        raise ValueError(
            f"invalid cron expression {quote(value)}: each field is a number in range, *, a-b, "
            "a list of these, with an optional /step (names: jan-dec, mon-sun, lowercase)"
        )
    try:
        parsed = cron.parse(value)  # cron(8) semantics: weekday 0 and 7 are Sunday
    except ValueError as exc:
        raise ValueError(f"invalid cron expression {quote(value)}: {quote(str(exc), 120)}") from exc
    if parsed.next_after(_CRON_EPOCH) is None:
        raise ValueError(f"cron expression {quote(value)} never fires (no such day, e.g. 31 in February)")
    return " ".join(fields)


def _cron_field(value: str, step: str) -> str:
    stepped = rf"(?:/(?:{step}))?"
    atom = rf"(?:\*{stepped}|(?:{value})(?:-(?:{value}))?{stepped})"
    return rf"{atom}(?:,{atom})*"


# What a schedule may be, for the model and the JSON Schema alike: five fields of numbers in
# range, *, a-b, /step (1 to the field's span) and lists; lowercase month and weekday names.
# The model also has ``flink_gitops.cron`` parse it, which refuses what no pattern can see (e.g. 23-0).
_CRON_FIELDS = (
    (r"[0-5]?[0-9]", r"[1-9]|[1-5][0-9]"),
    (r"[01]?[0-9]|2[0-3]", r"[1-9]|1[0-9]|2[0-3]"),
    (r"0?[1-9]|[12][0-9]|3[01]", r"[1-9]|[12][0-9]|30"),
    (r"0?[1-9]|1[0-2]|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec", r"[1-9]|1[01]"),
    (r"[0-7]|mon|tue|wed|thu|fri|sat|sun", r"[1-7]"),
)
CRON_PATTERN = r"^\s*" + r"\s+".join(_cron_field(v, s) for v, s in _CRON_FIELDS) + r"\s*$"
_CRON = re.compile(CRON_PATTERN)


Cron = Annotated[
    str,
    AfterValidator(_cron),
    WithJsonSchema({"type": "string", "pattern": CRON_PATTERN}),
]

SHA256_PATTERN = r"^[0-9a-fA-F]{64}(?!\n)$"
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def _sha256_text(value: object) -> object:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError("jarSha256 must be text: quote it (YAML reads an all-digit value as a number)")
    return value


def _sha256(value: str) -> str:
    if not _SHA256.fullmatch(value):
        raise ValueError("jarSha256 must be 64 hexadecimal characters (a SHA-256 digest)")
    return value.lower()


Sha256 = Annotated[
    str,
    BeforeValidator(_sha256_text),
    AfterValidator(_sha256),
    WithJsonSchema({"type": "string", "pattern": SHA256_PATTERN}),
]


def _config_values(value: object) -> object:
    # Flink configuration values are strings on the wire; 4, true and "4", "true" mean the same.
    if not isinstance(value, dict):
        return value
    out: dict[object, object] = {}
    for k, v in value.items():
        if isinstance(v, bool):
            out[k] = "true" if v else "false"
        elif isinstance(v, (int, float)):
            out[k] = str(v)
        else:
            out[k] = v
    return out


#: Flink configuration, key → value (scalars are kept as text, as Flink does).
FlinkConfiguration = Annotated[
    dict[str, str],
    BeforeValidator(_config_values),
    WithJsonSchema(
        {"type": "object", "additionalProperties": {"type": ["string", "number", "integer", "boolean"]}}
    ),
]

Nonce = Annotated[int, Field(ge=0)]
UpgradeMode = Literal["savepoint", "last-state", "stateless"]
JobState = Literal["running", "suspended"]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, field_title_generator=lambda name, _info: name
    )


# --- flink-gitops/v1 FlinkJob ---------------------------------------------------------------------


class Metadata(_Model):
    #: the job's identity; NOT the file name.
    name: Annotated[DnsLabel, Change.IGNORE]
    labels: Annotated[dict[str, str], Change.IGNORE] = Field(default_factory=dict)
    annotations: Annotated[dict[str, str], Change.IGNORE] = Field(default_factory=dict)


class JobSection(_Model):
    #: repo path | file:// | https://; the jar's content digest stands in for it in the hash.
    jarURI: Annotated[str, Field(min_length=1), Change.IGNORE]
    #: SHA-256 of the jar, checked before upload; required for https:// unless unpinned jars are allowed.
    jarSha256: Annotated[Sha256 | None, Change.IGNORE] = None
    entryClass: Annotated[str | None, Change.UPGRADE] = None
    args: Annotated[list[str], Change.UPGRADE] = Field(default_factory=list)
    #: None: the cluster's default parallelism.
    parallelism: Annotated[int | None, Field(ge=1), Change.SCALE] = None
    #: how the next upgrade is done; changing it alone does nothing to the running job.
    upgradeMode: Annotated[UpgradeMode, Change.IGNORE] = "savepoint"
    state: Annotated[JobState, Change.STATE] = "running"
    #: read at the next restore only.
    allowNonRestoredState: Annotated[bool, Change.IGNORE] = False
    #: used at the first deploy and when savepointRedeployNonce is bumped (as in the operator).
    initialSavepointPath: Annotated[str | None, Change.IGNORE] = None
    savepointTriggerNonce: Annotated[Nonce, Change.SAVEPOINT] = 0
    #: the operator's checkpointTriggerNonce (an extension here): take a checkpoint, no redeploy.
    checkpointTriggerNonce: Annotated[Nonce, Change.SAVEPOINT] = 0
    savepointRedeployNonce: Annotated[Nonce, Change.REDEPLOY] = 0
    restartNonce: Annotated[Nonce, Change.REDEPLOY] = 0


class Savepoints(_Model):
    """Savepoint policy: applied by the daemon, never to the running job itself (so IGNORE)."""

    #: take a savepoint this often, seconds; None = never.
    periodic: Annotated[Duration | None, Change.IGNORE] = None
    maxCount: Annotated[int, Field(ge=1), Change.IGNORE] = 10
    #: seconds; default 7d.
    maxAge: Annotated[Duration, Change.IGNORE] = 7 * 86400


class FlinkJobSpec(_Model):
    # the schema says what _schedule_only_for_batch says: a schedule needs mode: batch
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"required": ["schedule"], "properties": {"schedule": {"type": "string"}}},
            "then": {"required": ["mode"], "properties": {"mode": {"const": "batch"}}},
        }
    )

    #: a cluster named in the daemon config; moving a job carries its state over (UPGRADE).
    cluster: Annotated[str, Field(min_length=1), Change.UPGRADE] = "default"
    job: JobSection
    flinkConfiguration: Annotated[FlinkConfiguration, Change.UPGRADE] = Field(default_factory=dict)
    mode: Annotated[Literal["streaming", "batch"], Change.UPGRADE] = "streaming"
    #: 5-field cron (UTC), batch jobs only.
    schedule: Annotated[Cron | None, Change.UPGRADE] = None
    savepoints: Savepoints = Field(default_factory=Savepoints)
    #: live drift policy (cancelled or rescaled by hand...): heal | warn | observe; None: sync.drift.
    drift: Annotated[Literal["heal", "warn", "observe"] | None, Change.IGNORE] = None

    @field_validator("schedule")
    @classmethod
    def _schedule_only_for_batch(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("mode", "streaming") != "batch":
            raise ValueError("schedule is only allowed for batch jobs (mode: batch)")
        return value


class FlinkJob(_Model):
    """A ``flink-gitops/v1`` job spec (the internal model)."""

    apiVersion: Literal["flink-gitops/v1"]
    kind: Literal["FlinkJob"]
    metadata: Metadata
    spec: FlinkJobSpec

    @property
    def name(self) -> str:
        return self.metadata.name


# --- flink.apache.org/v1beta1 FlinkSessionJob ------------------------------------------------------


class K8sMetadata(_Model):
    name: DnsLabel
    #: a Kubernetes namespace; meaningless here, accepted and ignored.
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    # Set by the Kubernetes API server (in manifests exported with kubectl); accepted and ignored.
    uid: Any = None
    resourceVersion: Any = None
    generation: Any = None
    creationTimestamp: Any = None
    finalizers: Any = None
    managedFields: Any = None


#: a reference by name (a Kubernetes FlinkStateSnapshot) is refused; in the schema too.
_NOT_HERE = WithJsonSchema(
    {"type": "null", "description": "refers to a Kubernetes FlinkStateSnapshot: use path"}
)


class StateReference(_Model):
    path: str | None = None
    name: Annotated[str | None, _NOT_HERE] = None
    namespace: Annotated[str | None, _NOT_HERE] = None


def _null_nonce(value: object) -> object:
    return 0 if value is None else value


#: the operator's nonces may be null (its CRD has them optional): null means 0.
OperatorNonce = Annotated[
    int,
    BeforeValidator(_null_nonce),
    Field(ge=0),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]}),
]


class SessionJobJob(_Model):
    jarURI: Annotated[str, Field(min_length=1)]
    entryClass: str | None = None
    args: list[str] = Field(default_factory=list)
    parallelism: Annotated[int | None, Field(ge=1)] = None
    #: the operator's default is stateless, so a manifest keeps meaning what it meant there.
    upgradeMode: UpgradeMode = "stateless"
    state: JobState = "running"
    allowNonRestoredState: bool | None = None
    initialSavepointPath: str | None = None
    initialStateReference: StateReference | None = None
    savepointTriggerNonce: OperatorNonce = 0
    checkpointTriggerNonce: OperatorNonce = 0
    savepointRedeployNonce: OperatorNonce = 0

    @model_validator(mode="after")
    def _state_reference(self) -> SessionJobJob:
        ref = self.initialStateReference
        if ref is None:
            return self
        if ref.name is not None or ref.namespace is not None:
            raise ValueError(
                "initialStateReference by name refers to a Kubernetes FlinkStateSnapshot; "
                "use initialSavepointPath (or initialStateReference.path)"
            )
        if ref.path is not None and self.initialSavepointPath not in (None, ref.path):
            raise ValueError("initialSavepointPath and initialStateReference.path disagree")
        return self


class SessionJobSpec(_Model):
    #: the session cluster (a FlinkDeployment in Kubernetes; a configured cluster name here).
    deploymentName: Annotated[str, Field(min_length=1)]
    job: SessionJobJob
    flinkConfiguration: FlinkConfiguration = Field(default_factory=dict)
    restartNonce: OperatorNonce = 0


class FlinkSessionJob(_Model):
    """The Kubernetes operator's ``FlinkSessionJob``, accepted as-is and mapped onto :class:`FlinkJob`."""

    apiVersion: Literal["flink.apache.org/v1beta1"]
    kind: Literal["FlinkSessionJob"]
    metadata: K8sMetadata
    spec: SessionJobSpec
    #: written by the operator; ignored.
    status: dict[str, Any] | None = None

    def to_flinkjob(self) -> FlinkJob:
        job = self.spec.job
        ref_path = job.initialStateReference.path if job.initialStateReference else None
        return FlinkJob(
            apiVersion="flink-gitops/v1",
            kind="FlinkJob",
            metadata=Metadata(
                name=self.metadata.name, labels=self.metadata.labels, annotations=self.metadata.annotations
            ),
            spec=FlinkJobSpec(
                cluster=self.spec.deploymentName,
                job=JobSection(
                    jarURI=job.jarURI,
                    entryClass=job.entryClass,
                    args=job.args,
                    parallelism=job.parallelism,
                    upgradeMode=job.upgradeMode,
                    state=job.state,
                    allowNonRestoredState=bool(job.allowNonRestoredState),
                    initialSavepointPath=job.initialSavepointPath or ref_path,
                    savepointTriggerNonce=job.savepointTriggerNonce,
                    checkpointTriggerNonce=job.checkpointTriggerNonce,
                    savepointRedeployNonce=job.savepointRedeployNonce,
                    restartNonce=self.spec.restartNonce,
                ),
                flinkConfiguration=self.spec.flinkConfiguration,
            ),
        )


#: (apiVersion, kind) → model.
KINDS: dict[tuple[str, str], type[FlinkJob] | type[FlinkSessionJob]] = {
    ("flink-gitops/v1", "FlinkJob"): FlinkJob,
    ("flink.apache.org/v1beta1", "FlinkSessionJob"): FlinkSessionJob,
}
