"""Incident state as the workflow keeps it and GET /v1/incidents/{id} shows it.

Also the payloads of the workflow's updates (approve, deny, extend, release) and what a
run carries across continue-as-new. Pure pydantic models; no I/O.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.adapter import Plan, Receipt, StepCommand, Verification
from contracts.decision import Decision, OnDrift
from contracts.findings import Finding


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IncidentStatus(StrEnum):
    OPEN = "open"
    AWAITING_APPROVAL = "awaiting_approval"
    CONTAINING = "containing"
    CONTAINED = "contained"
    RELEASED = "released"
    # A step waits past its approval deadline (on_timeout: escalate): a person must decide
    # it, late (the approval policy says who may). Not `failed`: nothing failed. Once it
    # is decided the incident shows its steps' state again; the escalation stays in its
    # `escalations` and audit.
    ESCALATED = "escalated"
    FAILED = "failed"
    CLOSED = "closed"


class StepState(StrEnum):
    PLANNED = "planned"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    APPLYING = "applying"
    APPLIED = "applied"
    VERIFIED = "verified"
    DENIED = "denied"
    EXPIRED = "expired"
    FAILED = "failed"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"


def local_principal_id(name: str) -> str:
    """The id of a principal of the local store (orchestrator/responders/principals.py)."""
    return f"local:{name}"


def _with_local_id(data: Any, id_key: str, name_key: str) -> Any:
    """Payloads recorded before principals had ids (running incidents, committed
    histories) named local principals only: their id is `local:<name>`."""
    if isinstance(data, dict) and id_key not in data and isinstance(data.get(name_key), str):
        return {**data, id_key: local_principal_id(data[name_key])}
    return data


class Principal(_Model):
    """Who acts, as the API authenticated them.

    `id` is what identity checks compare (four-eyes here and in the approval policy):
    namespaced (`local:<name>`, `oidc:<issuer>#<sub>`), so a local principal and an IdP
    user never meet, and stable while an IdP display name changes. `name` is for people.
    """

    id: str = Field(min_length=1)
    name: str = Field(min_length=1, max_length=128)
    roles: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _id_of_an_old_payload(cls, data: Any) -> Any:
        return _with_local_id(data, "id", "name")


class ApprovalRecord(_Model):
    principal: str  # the display name, as it was when they acted
    principal_id: str = Field(min_length=1)
    roles: list[str] = Field(default_factory=list)
    reason: str
    at: str
    # The approval policy's decision that allowed this principal to act.
    decision_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _id_of_an_old_payload(cls, data: Any) -> Any:
        return _with_local_id(data, "principal_id", "principal")


class StepView(_Model):
    id: str
    adapter: str
    action: str
    target: dict[str, Any]
    args: dict[str, Any] = Field(default_factory=dict)
    state: StepState
    reversible: bool = True
    automatic: bool = True
    requested_by: str = "policy"
    # The requesting principal's id; None while the policy is the requester (it always is
    # today), so no principal's id can match it.
    requested_by_id: str | None = None
    approvals: list[ApprovalRecord] = Field(default_factory=list)
    denial: ApprovalRecord | None = None
    required_approvals: int = 0
    approval_roles: list[str] = Field(default_factory=list)
    must_include_roles: list[str] = Field(default_factory=list)
    approval_deadline: str | None = None
    on_timeout: str = "escalate"
    # When the deadline passed while the step still waited and was escalated: it is
    # overdue until someone decides it (the approval policy says who may, late).
    overdue_since: str | None = None
    lease_s: int | None = None
    lease_expires_at: str | None = None
    applied_seq: int | None = None
    # Recorded before apply: what the target held, so an undo never depends on the receipt.
    rollback_intent: dict[str, Any] | None = None
    receipt: Receipt | None = None
    verification: dict[str, Any] | None = None
    error: str | None = None
    # A dry run made when the step started waiting for approval, for the approvers.
    preview: Plan | None = None
    # Essential services the policy asked to watch while this step is applied.
    guard: list[str] = Field(default_factory=list)
    guard_report: dict[str, Any] | None = None
    # While held, the target is observed again on a schedule (workflows/drift.py): what
    # to do when it is found out of its contained state, and when it was last seen in it.
    drift: OnDrift = OnDrift.REAPPLY
    drift_checked_at: str | None = None
    drift_checks: int = 0

    @model_validator(mode="before")
    @classmethod
    def _id_of_an_old_requester(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("requested_by", "policy") == "policy":
            return data
        return _with_local_id(data, "requested_by_id", "requested_by")


class AuditEntry(_Model):
    """One transition of an incident; the sink links it into a hash chain, filling `prev`
    and `hash` (see orchestrator/audit/chain.py)."""

    incident_id: str
    seq: int
    at: str
    kind: str
    detail: dict[str, Any] = Field(default_factory=dict)
    prev: str | None = None
    hash: str | None = None


class GuardRequest(_Model):
    """Probe these essential services now (before or after a step)."""

    incident_id: str
    step_id: str
    services: list[str]
    moment: str  # "before" or "after": the probe waits for a change to settle after
    # The workflow already waited (a durable timer of the before-report's settle_s), so
    # the probe need not: the step is reported contained while the change settles.
    settled: bool = False


class ServiceHealth(_Model):
    # None: nothing could be concluded (no probe configured for the service).
    healthy: bool | None
    detail: str = ""


class GuardReport(_Model):
    services: dict[str, ServiceHealth] = Field(default_factory=dict)
    # How long a change takes to show on these services (the guard's setting): how long
    # the workflow waits after the step before probing them again.
    settle_s: float = 0.0

    def harmed_since(self, before: GuardReport) -> list[str]:
        """Services that were healthy before and are not now: the step must be undone."""
        return sorted(
            name
            for name, now in self.services.items()
            if now.healthy is False
            and (was := before.services.get(name)) is not None
            and was.healthy is True
        )


class AuditBatch(_Model):
    entries: list[AuditEntry]


class IncidentView(_Model):
    incident_id: str
    status: IncidentStatus
    entity: str
    findings: list[Finding]
    findings_received: int = 0
    duplicates: int = 0
    escalated: bool = False
    escalations: list[str] = Field(default_factory=list)
    decision: Decision | None = None
    decisions: list[str] = Field(default_factory=list, description="decision ids, oldest first")
    steps: list[StepView] = Field(default_factory=list)
    audit: list[AuditEntry] = Field(default_factory=list)
    audit_total: int = 0
    run: int = 1
    # Earlier incidents of the same entity (`<key>@<n>` after the first), oldest first.
    earlier: list[str] = Field(default_factory=list)


# --- update payloads --------------------------------------------------------------------------


class Grant(_Model):
    """The API's authorization of one responder action the policy allowed, MAC'd with the
    approval key (orchestrator/responders/grants.py); the workflow has it checked before it acts."""

    incident_id: str
    step_id: str | None = None  # None for a release
    action: str
    principal_id: str
    decision_id: str
    expires_at: str  # ISO 8601
    mac: str


class GrantCheck(_Model):
    """What the workflow asks a worker to verify: the grant, and what it must cover."""

    grant: Grant | None
    incident_id: str
    step_id: str | None
    action: str
    principal_id: str


class GrantVerdict(_Model):
    refused: str | None = None  # why, when the grant does not hold


class ApproveRequest(_Model):
    step_id: str
    principal: Principal
    reason: str = Field(min_length=1, max_length=2000)
    authz_decision_id: str | None = None
    # The incident the responder acted on: a request meant for an earlier incident
    # of the entity is refused, never applied to the current one.
    incident_id: str | None = None
    grant: Grant | None = None  # absent: refused by incidents that check grants


class DenyRequest(ApproveRequest):
    pass


class ExtendRequest(_Model):
    step_id: str
    principal: Principal
    lease_s: int = Field(gt=0, le=7 * 24 * 3600)
    reason: str = Field(default="", max_length=2000)
    authz_decision_id: str | None = None
    # The incident the responder acted on: a request meant for an earlier incident
    # of the entity is refused, never applied to the current one.
    incident_id: str | None = None
    grant: Grant | None = None  # absent: refused by incidents that check grants


class RenewLeaseRequest(_Model):
    """Move an applied step's deadline on the target itself (adapters.base.RenewsLease)."""

    receipt: Receipt
    expires_at: str  # ISO 8601, timezone-aware: the lease's new end


class ActingOn(_Model):
    """The RECORD_READS activity's argument: the step a run is about to act on, and why
    (workflows/changing.py, `record_reads`)."""

    incident_id: str
    step_id: str
    reason: str  # what the task read that the run acts on: "guard.tripped", "step.drift"


class GuardLook(_Model):
    """What the guard's probe before a change found (`report`), or why it could not probe
    (`error`)."""

    report: GuardReport | None = None
    error: str | None = None


class PlanRecording(_Model):
    """What the PLAN_RECORDED activity plans, and the token its plan is recorded under:
    one per execution of a step in a run (a re-apply after drift plans again); `before`,
    the guard's look before the change, travels with the plan (a guarded step's)."""

    command: StepCommand
    token: str
    before: GuardLook | None = None


class RecordedPlan(_Model):
    """A step's plan, signalled to its own workflow run before apply can change the target,
    with the guard's look before the change for a guarded step (`before`; absent from
    signals sent before it was recorded, session 16) and the change itself (`command`;
    since session 17), so a run that does not make that change again can say what a lost
    attempt may have left on the target."""

    token: str
    plan: Plan
    before: GuardLook | None = None
    command: StepCommand | None = None


class ContainRequest(_Model):
    """What the CONTAIN activity probes first (`guard`, if the step watches essential
    services), plans (unless `plan` was already recorded under `token`), applies and
    verifies. A task run again after a crash passes in what the first attempt recorded:
    the plan, and the guard's look before the change (`before`), so neither is read again
    from a target the first attempt may have changed."""

    command: StepCommand
    token: str
    plan: Plan | None = None
    guard: GuardRequest | None = None
    before: GuardLook | None = None


class Contained(_Model):
    """The CONTAIN activity's findings. A probe that could not run leaves `guard` empty
    and says why in `guard_error`. A verify that raised after apply landed leaves
    `verification` empty and says why in `verify_error`: the receipt still reaches the
    workflow, which records it and verifies again on its own."""

    plan: Plan
    receipt: Receipt
    verification: Verification | None = None
    verify_error: str | None = None
    guard: GuardReport | None = None
    guard_error: str | None = None


class ReleaseRequest(_Model):
    principal: Principal
    reason: str = Field(min_length=1, max_length=2000)
    authz_decision_id: str | None = None
    # The incident the responder acted on: a request meant for an earlier incident
    # of the entity is refused, never applied to the current one.
    incident_id: str | None = None
    grant: Grant | None = None  # absent: refused by incidents that check grants


class ReleaseStepRequest(ReleaseRequest):
    """Undo one held step and keep the rest of the incident as it is."""

    step_id: str


# --- continue-as-new -------------------------------------------------------------------------


class IncidentCarry(_Model):
    """Everything a new run needs to continue the incident exactly where the last stopped."""

    findings: list[Finding]
    findings_received: int
    seen: list[str]
    duplicates: int
    decision: Decision | None
    decisions: list[str]
    steps: list[StepView]
    escalations: list[str]
    # Whether an escalation came from a failure (not a missed approval deadline); None in
    # carries from before the two were told apart, where every escalation was a failure.
    failing: bool | None = None
    audit_tail: list[AuditEntry]
    audit_total: int
    exported_seq: int
    picture: list[str]
    release_requested: ReleaseRequest | None = None
    run: int = 1
    # Which incident of this entity this is (1 for the first), and the earlier ones' ids.
    sequence: int = 1
    earlier: list[str] = Field(default_factory=list)
    # A released incident kept readable while it waits for the entity's next finding.
    idle: bool = False
    # The first run of a later incident: it announces itself in the audit.
    fresh: bool = False
    # MACs of the grants already used: a grant authorizes one action, once.
    used_grants: list[str] = Field(default_factory=list)
    # Changes a lost worker made that no run has made again (workflows/unclaimed.py), and
    # the tokens of those a person was told of already.
    unclaimed: list[RecordedPlan] = Field(default_factory=list)
    unclaimed_told: list[str] = Field(default_factory=list)


class IncidentParams(_Model):
    incident_id: str
    entity: str
    carry: IncidentCarry | None = None
    # History length at which a run hands over to a fresh one (tests lower it).
    max_history_events: int = Field(default=10_000, ge=100)
    # Seconds between drift checks of a held step's target (settings.drift_check_s).
    drift_check_s: int = Field(default=30, ge=1)
