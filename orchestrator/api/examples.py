"""Examples for /openapi.json: one request and one answer per route, as a responder or
an integrator would send and see them (the webhook route has its own, per SIEM)."""

from __future__ import annotations

from typing import Any

STEP = {
    "id": "fallback:tsc-0002",
    "adapter": "modbus",
    "action": "set",
    "target": {"asset": "tsc-0002"},
    "args": {"mode": "flash"},
    "state": "awaiting_approval",
    "reversible": True,
    "automatic": False,
    "required_approvals": 2,
    "approval_roles": ["duty-officer", "responder"],
    "must_include_roles": ["duty-officer"],
    "approvals": [
        {
            "principal": "alice",
            "roles": ["responder"],
            "reason": "confirmed with the traffic management centre",
            "at": "2026-11-26T21:13:12+00:00",
            "decision_id": "7b554d49-38e7-4e67-a07e-c020b75ce7e5",
        }
    ],
    "lease_s": 3600,
    "guard": [],
    "preview": {
        "adapter": "modbus",
        "summary": "switch tsc-0002 to flash",
        "changes": ["write 1 (flash) to holding register 0 of unit 2, was 0 (normal)"],
        "before": {"mode": "normal", "value": 0},
        "after": {"mode": "flash", "value": 1},
    },
}
SUMMARY = {
    "incident_id": "inc-tsc-0002",
    "status": "awaiting_approval",
    "entity": "tsc-0002",
    "severity_id": 4,
    "zones": ["traffic"],
    "findings": 1,
    "verdict": "contain",
    "steps": {"fallback:tsc-0002": "awaiting_approval"},
}
INCIDENT = {
    "incident_id": "inc-tsc-0002",
    "status": "awaiting_approval",
    "entity": "tsc-0002",
    "findings_received": 1,
    "decision": {
        "verdict": "contain",
        "reasons": ["highest severity_id is 4", "tsc-0002 has safe mode flash"],
        "policy_version": "sha256:b240ee31c8139bf8",
        "decision_id": "d09c6ec9-aef4-4744-8084-37c937fb88de",
    },
    "steps": [STEP],
    "audit_total": 5,
}
REASON = {"reason": "confirmed with the traffic management centre"}
UNDO = {
    "step_id": "fallback:tsc-0002",
    "kind": "fallback",
    "adapter": "modbus",
    "action": "set",
    "target": {"asset": "tsc-0002"},
    "state": "verified",
    "words": "set tsc-0002 to flash; was normal",
}
RELEASE_PREVIEW = {
    "incident_id": "inc-tsc-0002",
    "step_id": None,
    "reverts": [UNDO],
    "quarantines": [],
    "stays": [],
    "cancels": [],
    "summary": "undoes 1 step",
}
RELEASE_REPORT = {
    "reverted": [{**UNDO, "state": "rolled_back"}],
    "not_reverted": [],
    "stayed": [],
    "cancelled": [],
    "summary": "reverted 1 step",
}
AUTOMATION = {
    "paused": True,
    "changed_by": "dora",
    "changed_at": "2026-11-26T21:00:00+00:00",
    "reason": "drill: every step needs a human",
    "active": {"inc-tsc-0001:fallback:tsc-0001": "2026-11-26T20:58:02+00:00"},
    "active_containments": 1,
}

# (method, path) -> (request body example or None, 200 answer example)
EXAMPLES: dict[tuple[str, str], tuple[dict[str, Any] | None, Any]] = {
    ("get", "/healthz"): (None, {"status": "ok"}),
    ("get", "/readyz"): (
        None,
        {"status": "ready", "checks": {"temporal": "ok", "worker": "ok", "policy": "ok"}},
    ),
    ("get", "/v1/incidents"): (None, {"incidents": [SUMMARY]}),
    ("get", "/v1/incidents/{incident_id}"): (None, INCIDENT),
    ("post", "/v1/incidents/{incident_id}/steps/{step_id}/approve"): (REASON, STEP),
    ("post", "/v1/incidents/{incident_id}/steps/{step_id}/deny"): (
        {"reason": "the controller is on a maintenance bench"},
        {**STEP, "state": "denied"},
    ),
    ("post", "/v1/incidents/{incident_id}/steps/{step_id}/extend"): (
        {"lease_s": 3600, "reason": "vendor visit"},
        {**STEP, "state": "verified", "lease_expires_at": "2026-11-26T23:13:11+00:00"},
    ),
    ("get", "/v1/incidents/{incident_id}/release-preview"): (None, RELEASE_PREVIEW),
    ("post", "/v1/incidents/{incident_id}/release"): (
        {"reason": "controller reflashed"},
        {**INCIDENT, "status": "released", "release_report": RELEASE_REPORT},
    ),
    ("post", "/v1/incidents/{incident_id}/steps/{step_id}/release"): (
        {"reason": "controller reflashed"},
        {**STEP, "state": "rolled_back", "release_report": RELEASE_REPORT},
    ),
    ("get", "/v1/automation"): (None, AUTOMATION),
    ("post", "/v1/automation/{change}"): ({"reason": "drill over"}, AUTOMATION),
    ("get", "/v1/policy"): (
        None,
        {
            "engine": "embedded",
            "version": "sha256:b240ee31c8139bf8",
            "source": "/srv/bulkhead/policies",
            "loaded_at": "2026-11-26T20:45:30+00:00",
            "hot_reload": True,
            "last_rejection": None,
        },
    ),
    ("post", "/v1/policy/evaluate"): (
        {
            "finding_info": {"uid": "det-1", "title": "Unauthorized Modbus writes"},
            "severity_id": 4,
            "time": 1796227200000,
            "resources": [{"uid": "tsc-0002"}],
            "metadata": {"product": {"name": "Lab ICS Monitor"}},
        },
        INCIDENT["decision"],
    ),
}


def add_examples(document: dict[str, Any]) -> None:
    for (method, path), (request, answer) in EXAMPLES.items():
        operation = document.get("paths", {}).get(path, {}).get(method)
        if operation is None:
            continue
        if request is not None:
            body = operation.setdefault("requestBody", {"content": {"application/json": {}}})
            body.setdefault("content", {}).setdefault("application/json", {})["example"] = request
        ok = operation.setdefault("responses", {}).setdefault("200", {"description": "OK"})
        ok.setdefault("content", {}).setdefault("application/json", {})["example"] = answer


# A Suricata alert as its forwarder posted it (GET /v1/raw/{sha256}), shortened.
RAW_PAYLOAD = {
    "timestamp": "2026-12-02T16:09:03.254117+0000",
    "event_type": "alert",
    "src_ip": "198.18.40.77",
    "dest_ip": "198.18.10.11",
    "dest_port": 502,
    "alert": {"signature_id": 2026001, "signature": "BULKHEAD SCADA Modbus Write Multiple"},
    "payload_printable": "....",
}
