"""A step outcome as an OCSF Remediation event, OCSF schema 1.8.0.

Taken from ocsf-schema at tag v1.8.0 (the latest release; remediation classes arrived in
1.3.0 and are unchanged since 1.5.0): events/base_event.json, events/remediation/
remediation_activity.json and network_remediation_activity.json, categories.json,
dictionary.json, objects/metadata.json, product.json, device.json (extends endpoint),
network_connection_info.json, policy.json, profiles/host.json and security_control.json.

- Category 7 Remediation. Remediation Activity is class 7001 (`uid` 1 in the category);
  Network Remediation Activity 7004 extends it and requires `connection_info` (whose
  `direction_id` is required).
- Required of every event: `activity_id`, `category_uid`, `class_uid`, `type_uid`
  (= class_uid * 100 + activity_id), `time` (epoch milliseconds), `severity_id`, and
  `metadata` with `product` (a `name` or `uid`) and `version` (the schema's); the classes
  add `command_uid`.
- `activity_id` is the D3FEND tactic: 1 Isolate, 2 Evict, 3 Restore, 4 Harden, 5 Detect,
  plus 0 Unknown and 99 Other. `status_id`: 0 Unknown, 1 Success, 2 Failure, 3 Does Not
  Exist, 4 Partial, 5 Unsupported, 6 Error, 99 Other (then `status` names it).
- `device` comes with the host profile (its `type_id` is required) and `policy` with the
  security_control profile; `metadata.profiles` lists both.

Bulkhead's own facts that OCSF has no attribute for (the incident, the finding uids the
step answers, the step's adapter, action and target) are under `unmapped.bulkhead`; the
incident id is also `metadata.correlation_uid`, so a SIEM joins on either.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from orchestrator.events.lookup import StepFacts
from orchestrator.events.trail import Decided, Outcome, StepOutcome

OCSF_VERSION = "1.8.0"
CATEGORY_UID = 7
CATEGORY_NAME = "Remediation"
REMEDIATION_ACTIVITY = 7001
NETWORK_REMEDIATION_ACTIVITY = 7004
CLASS_NAMES = {
    REMEDIATION_ACTIVITY: "Remediation Activity",
    NETWORK_REMEDIATION_ACTIVITY: "Network Remediation Activity",
}
PRODUCT_NAME = "Bulkhead"
# The adapters that act on networks (adapters/network/); the others act on services and
# identities and report as plain Remediation Activity.
NETWORK_ADAPTERS = frozenset({"nftables"})
IDENTITY_ADAPTERS = frozenset({"ldap", "scim", "vault"})
POLICY_NAME = "data.bulkhead.containment.decision"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ActivityId(IntEnum):
    UNKNOWN = 0
    ISOLATE = 1
    EVICT = 2
    RESTORE = 3
    HARDEN = 4
    DETECT = 5
    OTHER = 99


class StatusId(IntEnum):
    UNKNOWN = 0
    SUCCESS = 1
    FAILURE = 2
    OTHER = 99


class SeverityId(IntEnum):
    INFORMATIONAL = 1
    MEDIUM = 3
    HIGH = 4


@dataclass(frozen=True)
class Classified:
    activity: ActivityId
    activity_name: str
    status: StatusId
    status_name: str
    severity: SeverityId


# OpenC2 actions (what steps say) as the D3FEND tactic they carry out. A cut-off host or
# zone and a device switched to its safe mode (it keeps running, deaf to remote control)
# are barriers: Isolate. A denied identity is the adversary's access removed: Evict.
TACTICS = {"contain": ActivityId.ISOLATE, "deny": ActivityId.ISOLATE, "set": ActivityId.ISOLATE}
IDENTITY_TACTICS = {"deny": ActivityId.EVICT, "stop": ActivityId.EVICT}
SEVERITY_NAMES = {
    SeverityId.INFORMATIONAL: "Informational",
    SeverityId.MEDIUM: "Medium",
    SeverityId.HIGH: "High",
}


def classify(outcome: StepOutcome, adapter: str | None, action: str | None) -> Classified:
    """Activity, status and severity of an outcome. An undo is Restore; a containment,
    its failure or its escalation is the tactic of the step's action. A failure is High
    (the city is not in the state Bulkhead meant), an escalation Medium (a person decides)."""
    if outcome.outcome is Outcome.REVERTED or outcome.undoing:
        activity = ActivityId.RESTORE
    elif action is None:
        activity = ActivityId.UNKNOWN
    else:
        tactics = IDENTITY_TACTICS if adapter in IDENTITY_ADAPTERS else TACTICS
        activity = tactics.get(action, ActivityId.OTHER)
    name = action if activity is ActivityId.OTHER and action else activity.name.title()
    if outcome.outcome is Outcome.FAILED:
        return Classified(activity, name, StatusId.FAILURE, "Failure", SeverityId.HIGH)
    if outcome.outcome is Outcome.ESCALATED:
        return Classified(activity, name, StatusId.OTHER, "Escalated", SeverityId.MEDIUM)
    return Classified(activity, name, StatusId.SUCCESS, "Success", SeverityId.INFORMATIONAL)


def class_of(adapter: str | None) -> int:
    return NETWORK_REMEDIATION_ACTIVITY if adapter in NETWORK_ADAPTERS else REMEDIATION_ACTIVITY


def remediation_event(
    outcome: StepOutcome, facts: StepFacts | None, event_id: str
) -> dict[str, Any]:
    """The OCSF document for one step outcome; `facts` from the incident (None when it could
    not be found: the event then says what the trail knows)."""
    facts = facts or StepFacts()
    decided = outcome.decided or facts.decided
    kind = classify(outcome, facts.adapter, facts.action)
    class_uid = class_of(facts.adapter)
    event: dict[str, Any] = {
        "category_uid": CATEGORY_UID,
        "category_name": CATEGORY_NAME,
        "class_uid": class_uid,
        "class_name": CLASS_NAMES[class_uid],
        "activity_id": int(kind.activity),
        "activity_name": kind.activity_name,
        "type_uid": class_uid * 100 + int(kind.activity),
        "type_name": f"{CLASS_NAMES[class_uid]}: {kind.activity_name}",
        "time": epoch_ms(outcome.at),
        "timezone_offset": 0,
        "severity_id": int(kind.severity),
        "severity": SEVERITY_NAMES[kind.severity],
        "status_id": int(kind.status),
        "status": kind.status_name,
        "status_detail": outcome.reason,
        "command_uid": outcome.step_id,
        "message": _message(outcome, facts),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": event_id,
            "correlation_uid": outcome.incident_id,
            "product": {"name": PRODUCT_NAME, "vendor_name": PRODUCT_NAME, "version": _version()},
            "profiles": ["host", "security_control"],
            "log_name": "bulkhead.steps",
        },
        "unmapped": {"bulkhead": _bulkhead(outcome, facts, decided)},
    }
    if class_uid == NETWORK_REMEDIATION_ACTIVITY:
        event["connection_info"] = _connection(facts.action)
    device = _device(facts.target)
    if device is not None:
        event["device"] = device
    if decided is not None and (decided.decision_id or decided.policy_version):
        event["policy"] = _policy(decided)
    return event


def _bulkhead(outcome: StepOutcome, facts: StepFacts, decided: Decided | None) -> dict[str, Any]:
    return {
        "incident_id": outcome.incident_id,
        "outcome": outcome.outcome.value,
        "audit_seq": outcome.seq,
        "step": {
            "id": outcome.step_id,
            "adapter": facts.adapter,
            "action": facts.action,
            "target": dict(facts.target),
        },
        "policy_version": decided.policy_version if decided else None,
        "decision_id": decided.decision_id if decided else None,
        "finding_uids": list(decided.finding_uids) if decided else [],
        "findings_total": decided.findings_total if decided else 0,
    }


def _connection(action: str | None) -> dict[str, Any]:
    """A containment cuts the target's traffic both ways: OCSF has no such direction,
    so `Other` (99) with its name, as the schema asks of 99."""
    if action in {"contain", "deny"}:
        return {"direction_id": 99, "direction": "Inbound and Outbound"}
    return {"direction_id": 0, "direction": "Unknown"}


def _device(target: Mapping[str, Any]) -> dict[str, Any] | None:
    """The host or device a step acted on (a zone or an identity is no device)."""
    for key in ("device", "asset"):
        name = target.get(key)
        if isinstance(name, str) and name:
            # Bulkhead's inventory knows the asset by id, not by OCSF device type.
            return {"type_id": 0, "type": "Unknown", "uid": name, "name": name}
    return None


def _policy(decided: Decided) -> dict[str, Any]:
    policy: dict[str, Any] = {"name": POLICY_NAME}
    if decided.decision_id:
        policy["uid"] = decided.decision_id
    if decided.policy_version:
        policy["version"] = decided.policy_version
    return policy


def _message(outcome: StepOutcome, facts: StepFacts) -> str:
    what = f"{facts.adapter} {facts.action}" if facts.adapter and facts.action else "step"
    on = ", ".join(f"{k} {v}" for k, v in sorted(facts.target.items())) or "its target"
    verb = {
        Outcome.CONTAINED: "applied and verified",
        Outcome.REVERTED: "reverted",
        Outcome.FAILED: "failed while undone" if outcome.undoing else "failed",
        Outcome.ESCALATED: "escalated",
    }[outcome.outcome]
    return (
        f"Bulkhead {what} on {on} {verb} (step {outcome.step_id}, incident "
        f"{outcome.incident_id}): {outcome.reason}"
    )


def epoch_ms(at: str) -> int:
    """Workflow time (ISO 8601, UTC unless it says otherwise) as OCSF's epoch milliseconds,
    in integer arithmetic (a float would turn .123 s into 122 ms now and then)."""
    moment = datetime.fromisoformat(at)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(milliseconds=1)


@functools.cache
def _version() -> str:
    try:
        return version("bulkhead")
    except PackageNotFoundError:
        return "unknown"
