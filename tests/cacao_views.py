"""Incidents built by hand, as GET /v1/incidents/{id} shows them, for the CACAO export tests:
an automatic Modbus fallback, a network quarantine (and zone isolation) waiting for two
approvers, identity revocations, and a failed step that was rolled back."""

from __future__ import annotations

import json
from typing import Any

from contracts.incident import IncidentView
from orchestrator.config import DEFAULT_POLICY_DIR
from orchestrator.standards.openc2 import Addresses

FOUND_AT = 1_796_227_200_000  # 2026-12-02T16:00:00Z, epoch milliseconds


def lab_addresses() -> Addresses:
    """The shipped lab city's inventory: real asset, zone and conduit addresses."""
    data = json.loads((DEFAULT_POLICY_DIR / "data" / "inventory.json").read_text())
    return Addresses.from_inventory(data)


def _finding(title: str, uid: str, severity: int = 4) -> dict[str, Any]:
    return {
        "finding_info": {"uid": f"det-{uid}", "title": title},
        "severity_id": severity,
        "time": FOUND_AT,
        "resources": [{"uid": uid}],
        "metadata": {"product": {"name": "Lab ICS Monitor"}},
    }


def _audit(incident_id: str, *entries: tuple[str, str]) -> list[dict[str, Any]]:
    return [
        {"incident_id": incident_id, "seq": n, "at": at, "kind": kind, "detail": {}}
        for n, (at, kind) in enumerate(entries, start=1)
    ]


def _decision(*steps: dict[str, Any], verdict: str = "contain") -> dict[str, Any]:
    return {
        "verdict": verdict,
        "reasons": ["highest severity_id is 4"],
        "steps": steps,
        "policy_version": "sha256:b240ee31c8139bf8",
        "decision_id": "d09c6ec9-aef4-4744-8084-37c937fb88de",
    }


def _decided(step: dict[str, Any], **approval: Any) -> dict[str, Any]:
    keys = ("id", "adapter", "action", "target", "args", "lease_s", "reversible")
    return {**{k: step[k] for k in keys if k in step}, "approval": approval}


FALLBACK = {
    "id": "fallback:tsc-0001",
    "adapter": "modbus",
    "action": "set",
    "target": {"asset": "tsc-0001"},
    "args": {"mode": "flash"},
    "state": "verified",
    "lease_s": 3600,
    "lease_expires_at": "2026-12-02T17:00:02+00:00",
    "rollback_intent": {"mode": "normal", "value": 0},
}


def modbus_contained() -> IncidentView:
    """An automatic fallback: applied, verified, held on its lease; no approval."""
    incident = "inc-tsc-0001"
    return IncidentView.model_validate(
        {
            "incident_id": incident,
            "status": "contained",
            "entity": "tsc-0001",
            "findings": [_finding("Unauthorized Modbus writes", "tsc-0001")],
            "decision": _decision(_decided(FALLBACK)),
            "steps": [FALLBACK],
            "audit": _audit(
                incident,
                ("2026-12-02T16:00:01.250+00:00", "incident.opened"),
                ("2026-12-02T16:00:02.125+00:00", "step.verified"),
            ),
        }
    )


GATE = {
    "required": 2,
    "roles": ["responder", "duty-officer"],
    "must_include_roles": ["duty-officer"],
    "timeout_s": 600,
}
QUARANTINE = {
    "id": "quarantine:eng-ws-03",
    "adapter": "nftables",
    "action": "contain",
    "target": {"device": "eng-ws-03"},
    "args": {"timeout_s": 1800},
    "state": "awaiting_approval",
    "lease_s": 1800,
    "automatic": False,
    "required_approvals": 2,
    "approval_roles": ["responder", "duty-officer"],
    "must_include_roles": ["duty-officer"],
    "approval_deadline": "2026-12-02T16:10:02+00:00",
    "on_timeout": "escalate",
    "approvals": [
        {
            "principal": "alice",
            "principal_id": "local:alice",
            "roles": ["responder"],
            "reason": "the workstation beacons to a known C2",
            "at": "2026-12-02T16:03:00+00:00",
        }
    ],
}
ISOLATION = {
    "id": "isolate:municipal-it",
    "adapter": "nftables",
    "action": "contain",
    "target": {"zone": "municipal-it"},
    "args": {"allow": ["soc-mgmt", "dispatch-preemption"], "timeout_s": 900},
    "state": "awaiting_approval",
    "lease_s": 900,
    "automatic": False,
    "required_approvals": 2,
    "approval_roles": ["responder", "duty-officer"],
    "must_include_roles": ["duty-officer"],
    "approval_deadline": "2026-12-02T16:10:02+00:00",
}


def quarantine_awaiting() -> IncidentView:
    """A host quarantine and its zone's isolation, each waiting for two approvers (one of
    them a duty officer); one responder has approved the quarantine."""
    incident = "inc-eng-ws-03"
    return IncidentView.model_validate(
        {
            "incident_id": incident,
            "status": "awaiting_approval",
            "entity": "eng-ws-03",
            "findings": [_finding("Beaconing to a known C2 server", "eng-ws-03", severity=5)],
            "decision": _decision(_decided(QUARANTINE, **GATE), _decided(ISOLATION, **GATE)),
            "steps": [QUARANTINE, ISOLATION],
            "audit": _audit(
                incident,
                ("2026-12-02T16:00:01+00:00", "incident.opened"),
                ("2026-12-02T16:03:00+00:00", "step.approved"),
            ),
        }
    )


REVOKE_LDAP = {
    "id": "revoke:svc-scada@ldap-city",
    "adapter": "ldap",
    "action": "deny",
    "target": {"identity": "svc-scada", "system": "ldap-city"},
    "state": "verified",
    "lease_s": 7200,
}
REVOKE_VAULT = {
    "id": "revoke:svc-scada@vault-city",
    "adapter": "vault",
    "action": "deny",
    "target": {"identity": "svc-scada", "system": "vault-city"},
    "state": "verified",
    "reversible": False,
}


def identity_revoked() -> IncidentView:
    """A shared account revoked on the directory (reversible, leased) and in the vault
    (irreversible: leases revoked, secret rotated)."""
    incident = "inc-svc-scada"
    return IncidentView.model_validate(
        {
            "incident_id": incident,
            "status": "contained",
            "entity": "svc-scada",
            "findings": [_finding("Shared service account used from a new host", "svc-scada")],
            "decision": _decision(_decided(REVOKE_LDAP), _decided(REVOKE_VAULT)),
            "steps": [REVOKE_LDAP, REVOKE_VAULT],
            "audit": _audit(incident, ("2026-12-02T16:00:03+00:00", "step.verified")),
        }
    )


FAILED = {
    "id": "fallback:tsc-0002",
    "adapter": "modbus",
    "action": "set",
    "target": {"asset": "tsc-0002"},
    "args": {"mode": "flash"},
    "state": "rolled_back",
    "lease_s": 3600,
    "rollback_intent": {"mode": "normal", "value": 0},
    "error": "verification failed: register 0 reads 0 (normal), expected 1 (flash)",
}


def failed_and_rolled_back() -> IncidentView:
    """A fallback whose verification failed: the workflow rolled it back and escalated."""
    incident = "inc-tsc-0002"
    return IncidentView.model_validate(
        {
            "incident_id": incident,
            "status": "failed",
            "entity": "tsc-0002",
            "escalated": True,
            "findings": [_finding("Unauthorized Modbus writes", "tsc-0002")],
            "decision": _decision(_decided(FAILED)),
            "steps": [FAILED],
            "audit": _audit(
                incident,
                ("2026-12-02T16:00:01+00:00", "step.failed"),
                ("2026-12-02T16:00:04.5+00:00", "step.rolled_back"),
            ),
        }
    )


ALL = {
    "modbus": modbus_contained,
    "quarantine": quarantine_awaiting,
    "identity": identity_revoked,
    "failed": failed_and_rolled_back,
}
