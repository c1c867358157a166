"""Lenient pydantic models of the OCSF findings the `generic` source accepts.

Two classes (events/findings/*.json in github.com/ocsf/ocsf-schema):
- Detection Finding, class_uid 2004, OCSF 1.1 onward: the finding is `finding_info`, the
  proof is `evidences[]`.
- Security Finding, class_uid 2001, OCSF 1.0 (deprecated in 1.1, still emitted): the
  finding is `finding`, and `state_id` is required.

What the models check, and why:
- Every attribute OCSF requires of these classes (base_event.json and the class files):
  `class_uid`, `category_uid`, `type_uid`, `activity_id`, `severity_id`, `time`,
  `metadata.product`, `metadata.version`, `finding_info.uid` / `finding.uid` and, for
  2001, `state_id`. Missing or ill-typed is an error at that attribute's JSON pointer.
- Integers are strict (`true`, `4.0` and `"4"` are not 4) and enum ids are closed sets.
- Attributes Bulkhead turns into entities, endpoints, users or decisions (resources,
  device, evidences' endpoints and users, actor, observables' type_id, confidence_id) are
  type-checked when present: silently dropping one could key the incident to the wrong
  entity.
- Everything else, known to OCSF or not, passes unchecked (`extra="ignore"`; the raw
  document is kept verbatim) or is typed `Any` and read only when well-typed: titles,
  descriptions, ports, labels. A producer's sloppiness there must not cost a finding.

`finding_info.title` is required by OCSF 1.1 to 1.3 and only recommended from 1.4, and
producers leave it empty (CrowdStrike's gateway writes "" when a detection has no name),
so it is not checked: the normalizer derives a title when there is none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from orchestrator.ingest.connectors import ocsf_schema as schema

MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: past this a number is no time


def _one_of(allowed: frozenset[int], what: str) -> Callable[[int], int]:
    listed = ", ".join(str(v) for v in sorted(allowed))

    def check(value: int) -> int:
        if value not in allowed:
            raise ValueError(f"{value} is not an OCSF {what} (one of {listed})")
        return value

    return check


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


ActivityIdValue = Annotated[int, AfterValidator(_one_of(schema.ACTIVITY_IDS, "activity_id"))]
SeverityIdValue = Annotated[int, AfterValidator(_one_of(schema.SEVERITY_IDS, "severity_id"))]
ConfidenceIdValue = Annotated[int, AfterValidator(_one_of(schema.CONFIDENCE_IDS, "confidence_id"))]
StateIdValue = Annotated[int, AfterValidator(_one_of(schema.STATE_IDS, "state_id"))]
EpochMs = Annotated[int, Field(ge=0, le=MAX_TIME_MS)]  # timestamp_t: epoch milliseconds
Uid = Annotated[str, AfterValidator(_not_blank)]


class _Lenient(BaseModel):
    """Strict types on the attributes declared; every other attribute passes unchecked."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class Product(_Lenient):
    name: str | None = None
    uid: str | None = None
    vendor_name: Any = None

    @model_validator(mode="after")
    def _named(self) -> Product:
        # objects/_entity.json: at_least_one of name, uid.
        if not (self.name or "").strip() and not (self.uid or "").strip():
            raise ValueError("needs a name or a uid (OCSF: at least one of them)")
        return self


class Metadata(_Lenient):
    product: Product
    version: str

    @field_validator("version")
    @classmethod
    def _ocsf_1(cls, version: str) -> str:
        if not schema.is_ocsf_1(version):
            raise ValueError(f"OCSF version {version[:40]!r} is not read here: only OCSF 1.x")
        return version


class User(_Lenient):
    name: str | None = None
    uid: str | None = None
    email_addr: Any = None


class Actor(_Lenient):
    user: User | None = None


class Endpoint(_Lenient):
    """A network endpoint of an evidence (objects/network_endpoint.json)."""

    ip: str | None = None
    hostname: str | None = None
    name: str | None = None  # the endpoint's short name, often its hostname
    port: Any = None  # port_t; some producers send "443", and a port keys nothing


class Device(_Lenient):
    """The affected host (objects/device.json; the host profile's `device`)."""

    uid: str | None = None
    name: str | None = None
    hostname: str | None = None
    ip: str | None = None
    type: Any = None


class Evidence(_Lenient):
    src_endpoint: Endpoint | None = None
    dst_endpoint: Endpoint | None = None
    user: User | None = None
    actor: Actor | None = None


class Resource(_Lenient):
    """An affected resource (objects/resource_details.json)."""

    uid: str | None = None
    name: str | None = None
    hostname: str | None = None  # 1.6 onward
    ip: str | None = None  # 1.6 onward
    zone: str | None = None  # 1.6 onward (cloud profile)
    type: Any = None
    labels: Any = None


class Observable(_Lenient):
    type_id: int  # required by objects/observable.json; says what `value` is
    value: Any = None
    name: Any = None


class FindingInfo(_Lenient):
    """`finding_info` of 2004 (objects/finding_info.json), `finding` of 2001 (finding.json)."""

    uid: Uid
    title: Any = None
    desc: Any = None
    types: Any = None
    analytic: Any = None


class OcsfFinding(_Lenient):
    """What both accepted classes share: the base event plus the Findings category."""

    CLASS_UID: ClassVar[int]

    # Declared in this order on purpose: type_uid's check reads the two before it.
    class_uid: int
    category_uid: int
    activity_id: ActivityIdValue
    type_uid: int
    severity_id: SeverityIdValue
    time: EpochMs
    metadata: Metadata
    confidence_id: ConfidenceIdValue | None = None
    confidence: Any = None
    message: Any = None
    class_name: Any = None
    resources: list[Resource] | None = None
    observables: list[Observable] | None = None
    actor: Actor | None = None  # the host profile
    device: Device | None = None  # the host profile; finding.json from 1.2

    @field_validator("class_uid")
    @classmethod
    def _accepted_class(cls, class_uid: int) -> int:
        if class_uid != cls.CLASS_UID:
            raise ValueError(
                f"class {schema.class_label(class_uid)} is not accepted: Bulkhead takes"
                " Detection Finding (2004) and Security Finding (2001)"
            )
        return class_uid

    @field_validator("category_uid")
    @classmethod
    def _findings_category(cls, category_uid: int) -> int:
        if category_uid != schema.FINDINGS_CATEGORY:
            raise ValueError(f"expected {schema.FINDINGS_CATEGORY} (Findings), got {category_uid}")
        return category_uid

    @field_validator("type_uid")
    @classmethod
    def _consistent_type(cls, type_uid: int, info: ValidationInfo) -> int:
        class_uid, activity_id = info.data.get("class_uid"), info.data.get("activity_id")
        if class_uid is None or activity_id is None:
            return type_uid  # their own errors say what is wrong
        expected = class_uid * 100 + activity_id
        if type_uid != expected:
            raise ValueError(
                f"expected {expected} (class_uid {class_uid} * 100 + activity_id"
                f" {activity_id}), got {type_uid}"
            )
        return type_uid

    @property
    def info(self) -> FindingInfo:
        raise NotImplementedError

    @property
    def closes(self) -> bool:
        """Whether this finding resolves the one it refers to (besides activity_id 3)."""
        return False


class DetectionFinding(OcsfFinding):
    CLASS_UID: ClassVar[int] = schema.DETECTION_FINDING

    finding_info: FindingInfo
    evidences: list[Evidence] | None = None

    @property
    def info(self) -> FindingInfo:
        return self.finding_info


class SecurityFinding(OcsfFinding):
    CLASS_UID: ClassVar[int] = schema.SECURITY_FINDING

    finding: FindingInfo
    state_id: StateIdValue
    analytic: Any = None  # top level in 1.0; finding_info.analytic from 1.1

    @property
    def info(self) -> FindingInfo:
        return self.finding

    @property
    def closes(self) -> bool:
        # OCSF 1.0 has no Close activity: a resolved or suppressed state is the closure.
        return self.state_id in schema.STATES_THAT_CLOSE


def model_for(document: dict[str, Any]) -> type[OcsfFinding]:
    """The class a document claims; a broken class_uid is told apart by its finding object."""
    class_uid = document.get("class_uid")
    if type(class_uid) is int:  # not bool, not float: those are errors of their own
        if class_uid == schema.SECURITY_FINDING:
            return SecurityFinding
        if class_uid == schema.DETECTION_FINDING:
            return DetectionFinding
    if "finding" in document and "finding_info" not in document:
        return SecurityFinding
    return DetectionFinding
