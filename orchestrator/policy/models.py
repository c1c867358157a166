"""pydantic models of what crosses the policy boundary: inputs, data documents, cases.

The JSON Schemas in policies/schemas/ are generated from these (orchestrator.policy.schemas),
so policy engineers can validate a hand-written input without reading Python.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

from contracts.decision import Decision, DecisionStep, Verdict
from contracts.findings import Finding


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    # Data documents may carry more than the policies read today (descriptions, owners).
    model_config = ConfigDict(extra="allow")


class _PolicyInput(_Strict):
    """What an engine evaluates: the typed input, and the one JSON document made of it."""

    def document(self) -> dict[str, Any]:
        """The JSON object the policy sees: exactly the fields that were set, at any depth.

        Absent and null differ in Rego, and the input digest hashes this document. So a
        default never appears where the caller left a field out (a hand-written case, an
        asset without an ip), and a null the caller set stays (a finding's `desc`): the
        document of a given input is what its dict form was, byte for byte once canonical.
        """
        return self.model_dump(mode="json", exclude_unset=True)


# --- input of data.bulkhead.containment.decision -----------------------------------------


class PolicyFinding(Finding):
    """A finding as the policy sees it: raw SIEM payloads stay out of policy input."""

    raw_data: SkipJsonSchema[None] = None
    raw_ref: SkipJsonSchema[None] = None


class AssetRecord(_Open):
    """An inventory asset named by the findings, with its inventory id."""

    id: str
    zone: str | None = None
    type: str | None = None
    ip: IPv4Address | None = None
    # How the findings named it ("resource uid", "source IP 198.18.40.77"), set by the
    # enrichment; the policy's `because` says it.
    matched_by: list[str] = Field(default_factory=list)


class IdentityRecord(_Open):
    """A shared identity named by the findings, with every system that holds it."""

    id: str
    holders: list[str] = Field(default_factory=list)
    used_in_zones: list[str] = Field(default_factory=list)


class Automation(_Strict):
    paused: bool


class CommandProducer(_Strict):
    """The principal that sent an OpenC2 command: the actor the policy judges."""

    id: str
    name: str
    roles: list[str] = Field(default_factory=list)


class CommandStep(_Open):
    """A step an OpenC2 command asks for, in Bulkhead's words (the inverse of the
    OpenC2 equivalents, orchestrator/standards/openc2.py), with the zones it touches."""

    id: str
    adapter: str
    action: str
    target: dict[str, Any]
    args: dict[str, Any] = Field(default_factory=dict)
    reversible: bool = True
    zones: list[str] = Field(default_factory=list)
    # Zones the step would cut off whole (a net covering every CIDR of the zone).
    whole_zones: list[str] = Field(default_factory=list)


class CommandInput(_Strict):
    """The incident's latest OpenC2 command (orchestrator/standards/openc2_carry.py): a
    request the policy decides, never an order."""

    action: str
    target: dict[str, Any]
    profile: str
    command_id: str
    producer: CommandProducer
    lease_s: int | None = Field(default=None, gt=0)
    steps: list[CommandStep] = Field(default_factory=list)


class ContainmentInput(_PolicyInput):
    incident_id: str
    findings: list[PolicyFinding]
    assets: list[AssetRecord] = Field(default_factory=list)
    identities: list[IdentityRecord] = Field(default_factory=list)
    automation: Automation
    active_containments: int = Field(
        ge=0, description="city-wide count of automatic containments in force"
    )
    command: CommandInput | SkipJsonSchema[None] = None


# --- input of data.bulkhead.approval.allow -------------------------------------------------

Action = Literal["approve", "deny", "extend", "release", "pause", "resume", "command"]
Role = Literal["responder", "duty-officer", "admin", "viewer", "policy-engineer", "openc2-producer"]


# Identity is the id (what four-eyes compares); the name is for people. An input without
# ids (written before they existed) names local principals: the id is then `local:<name>`.
PRINCIPAL_ID = "local:<name> or oidc:<issuer>#<sub>; absent: local:<name>"


def _absent_by_default(schema: JsonDict) -> None:
    schema.pop("default", None)  # absent, never null: the schema documents a string


def _principal_id() -> Any:
    return Field(default=None, description=PRINCIPAL_ID, json_schema_extra=_absent_by_default)


class Principal(_Strict):
    """The actor as the approval policy receives it (contracts.incident.Principal is who
    the API authenticated); `id` may be absent, and the policy derives `local:<name>`."""

    id: str | SkipJsonSchema[None] = _principal_id()
    name: str
    roles: list[str]


class PriorApproval(_Strict):
    principal: str
    principal_id: str | SkipJsonSchema[None] = _principal_id()
    roles: list[str] = Field(default_factory=list)


class StepApproval(_Open):
    required: int = 0
    roles: list[str] = Field(default_factory=list)
    must_include_roles: list[str] = Field(default_factory=list)


class StepRef(_Open):
    id: str
    adapter: str | None = None
    action: str | None = None
    target: dict[str, Any] = Field(default_factory=dict)
    approval: StepApproval = Field(default_factory=StepApproval)
    reversible: bool = True
    approvals: list[PriorApproval] = Field(
        default_factory=list, description="approvals the step already has (four-eyes)"
    )
    overdue: bool = Field(
        default=False,
        description="nobody approved it by its deadline and it was escalated: "
        "the approval policy says who may still approve it",
    )


class IncidentRef(_Open):
    incident_id: str
    status: str | None = None
    zones: list[str] = Field(default_factory=list)


class AuthorizationInput(_PolicyInput):
    action: Action
    principal: Principal
    incident: IncidentRef | None = None
    step: StepRef | None = None


# --- data documents (policies/data/*.json) -------------------------------------------------


class Zone(_Open):
    cidrs: list[IPv4Network]
    criticality: Literal["low", "medium", "high", "critical"]
    essential: bool
    # Essential services that run in, or depend on, this zone: a step touching the zone
    # is guarded by their health probes (policies read this per zone, in O(1)).
    essential_services: list[str] = Field(default_factory=list)


class DeviceType(_Open):
    protocol: str | None = None
    modes: dict[str, Any] = Field(default_factory=dict)
    safe_mode: str | None = None

    @model_validator(mode="after")
    def _safe_mode_is_a_mode(self) -> DeviceType:
        if self.safe_mode is not None and self.modes and self.safe_mode not in self.modes:
            raise ValueError(f"safe_mode {self.safe_mode!r} is not one of {sorted(self.modes)}")
        if self.safe_mode is not None and not self.protocol:
            raise ValueError("a device type with a safe_mode needs the protocol to set it")
        return self


class Asset(_Open):
    zone: str
    type: str
    ip: IPv4Address | None = None


class Revocation(_Strict):
    action: str = "deny"
    reversible: bool


class System(_Open):
    adapter: str
    revocation: Revocation


class Identity(_Open):
    holders: list[str] = Field(min_length=1)
    used_in_zones: list[str] = Field(min_length=1)


class Service(_Open):
    zone: str
    essential: bool
    fallback_modes: list[str] = Field(default_factory=list)
    fallback: str | None = None


class InventoryDocument(_Open):
    """data.inventory: the city. Cross-references are checked, so a typo fails the load."""

    zones: dict[str, Zone] = Field(default_factory=dict)
    device_types: dict[str, DeviceType] = Field(default_factory=dict)
    assets: dict[str, Asset] = Field(default_factory=dict)
    systems: dict[str, System] = Field(default_factory=dict)
    identities: dict[str, Identity] = Field(default_factory=dict)
    services: dict[str, Service] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references_resolve(self) -> InventoryDocument:
        problems = [
            f"assets.{uid}.zone: unknown zone {a.zone!r}"
            for uid, a in self.assets.items()
            if a.zone not in self.zones
        ]
        problems += [
            f"assets.{uid}.type: unknown device type {a.type!r}"
            for uid, a in self.assets.items()
            if a.type not in self.device_types
        ]
        problems += [
            f"identities.{iid}.holders: unknown system {s!r}"
            for iid, i in self.identities.items()
            for s in i.holders
            if s not in self.systems
        ]
        problems += [
            f"identities.{iid}.used_in_zones: unknown zone {z!r}"
            for iid, i in self.identities.items()
            for z in i.used_in_zones
            if z not in self.zones
        ]
        problems += [
            f"services.{sid}.zone: unknown zone {s.zone!r}"
            for sid, s in self.services.items()
            if s.zone not in self.zones
        ]
        problems += [
            f"zones.{zid}.essential_services: {sid!r} is not an essential service"
            for zid, z in self.zones.items()
            for sid in z.essential_services
            if sid not in self.services or not self.services[sid].essential
        ]
        problems += [
            f"zones.{s.zone}.essential_services: must list {sid!r}, which runs there"
            for sid, s in self.services.items()
            if s.essential
            and s.zone in self.zones
            and sid not in self.zones[s.zone].essential_services
        ]
        ips = [str(a.ip) for a in self.assets.values() if a.ip is not None]
        problems += [f"asset ip {ip} is used twice" for ip in sorted(set(ips)) if ips.count(ip) > 1]
        if problems:
            raise ValueError("; ".join(problems))
        return self


class SeverityThresholds(_Strict):
    act_at: int = Field(ge=0, le=99)
    isolate_zone_at: int = Field(ge=0, le=99)
    informational: int = Field(ge=0, le=99)

    @model_validator(mode="after")
    def _ordered(self) -> SeverityThresholds:
        # The policy relies on it: acting implies "not only informational".
        if not self.informational < self.act_at <= self.isolate_zone_at:
            raise ValueError("need informational < act_at <= isolate_zone_at")
        return self


class ConfidenceThresholds(_Strict):
    low: int


class BlastRadius(_Strict):
    max_automatic_containments: int = Field(ge=0)


class ApprovalSettings(_Strict):
    timeout_s: int = Field(gt=0)


class Leases(_Strict):
    fallback: int = Field(gt=0)
    quarantine: int = Field(gt=0)
    isolate: int = Field(gt=0)
    revoke: int = Field(gt=0)


class GuardrailsDocument(_Strict):
    """data.guardrails: every value is required, so the policy never falls back silently."""

    severity: SeverityThresholds
    confidence: ConfidenceThresholds
    blast_radius: BlastRadius
    approval: ApprovalSettings
    lease_s: Leases


DATA_MODELS: dict[str, type[BaseModel]] = {
    "inventory": InventoryDocument,
    "guardrails": GuardrailsDocument,
}


def data_problems(data: dict[str, Any]) -> list[str]:
    """Each data document that has a model, validated; one line per error, with its path."""
    problems: list[str] = []
    for name, model in DATA_MODELS.items():
        if name not in data:
            continue
        try:
            model.model_validate(data[name])
        except ValidationError as exc:
            problems += [
                f"data/{name}.json: {'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}"
                for e in exc.errors()
            ]
    return problems


# --- cases (policies/cases/*.json) ---------------------------------------------------------


class ExpectedDecision(_Strict):
    verdict: Verdict
    steps: list[DecisionStep] = Field(default_factory=list)
    reasons_include: list[str] = Field(default_factory=list)


class PolicyCase(_Strict):
    """An example input and the decision the policy must give for it."""

    description: str
    input: ContainmentInput
    expected: ExpectedDecision


__all__ = [
    "AuthorizationInput",
    "ContainmentInput",
    "Decision",
    "GuardrailsDocument",
    "InventoryDocument",
    "PolicyCase",
]
