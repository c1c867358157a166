"""Policy input: everything a decision needs, resolved in Python so the Rego stays pure."""

from __future__ import annotations

from typing import Any

from contracts.decision import DecideRequest
from contracts.findings import Finding
from orchestrator.policy.models import ContainmentInput
from orchestrator.standards.openc2_carry import split_commands
from orchestrator.wiring.inventory import Inventory


def containment_input(
    request: DecideRequest,
    inventory: Inventory,
    *,
    automation_paused: bool = False,
    active_containments: int = 0,
) -> ContainmentInput:
    """Input of `data.bulkhead.containment.decision` (schemas/containment-input.schema.json).

    `active_containments` is the city-wide count of automatic containments in force, for
    the blast-radius budget; `automation.paused` is the responders' kill switch. Validated
    from plain JSON in one piece: the document keeps exactly these keys (an asset without
    an ip has none, a finding's unset `desc` is null), and an error names its full path.
    """
    # An OpenC2 command travels as a finding; the policy sees it as `command`, and only
    # the detections as findings (a command is a request, not evidence).
    findings, command = split_commands(request.findings)
    matches = inventory.asset_matches(findings)
    document = {
        "incident_id": request.incident_id,
        "findings": [
            # The raw payload stays out: the policy never reads vendor JSON.
            f.model_dump(mode="json", exclude={"raw_data", "raw_ref"})
            for f in findings
        ],
        "assets": [
            {**record, "matched_by": matches[record["id"]]}
            for record in inventory.asset_records(list(matches))
        ],
        "identities": identity_records(inventory, findings),
        "automation": {"paused": automation_paused or request.automation_paused},
        "active_containments": active_containments,
    }
    if command is not None:
        document["command"] = command.model_dump(mode="json", exclude_none=True)
    return ContainmentInput.model_validate(document)


def identity_records(inventory: Inventory, findings: list[Finding]) -> list[dict[str, Any]]:
    """Shared identities the findings name: an evidence user (name or uid) or a resource uid.

    Each record carries every system holding the identity, so the policy can revoke it
    everywhere at once.
    """
    identities: dict[str, Any] = inventory.data.get("identities", {})
    named: list[str] = []
    for finding in findings:
        candidates = [r.uid for r in finding.resources]
        for evidence in finding.evidences:
            if evidence.user is not None:
                candidates += [v for v in (evidence.user.name, evidence.user.uid) if v]
        named.extend(c for c in candidates if c in identities and c not in named)
    return [{"id": name, **identities[name]} for name in named]
