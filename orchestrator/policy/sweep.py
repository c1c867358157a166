"""Generated findings over the whole inventory: each asset and each shared identity, named
each way a SIEM can name it, at every OCSF severity.

The cases in policies/cases/ are the examples someone thought of; the sweep is every
asset someone added since. Findings go through the same enrichment as in production
(orchestrator.policy.input), so the policy sees exactly what an incident would give it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from contracts.decision import DecideRequest
from contracts.findings import (
    ConfidenceId,
    Endpoint,
    Evidence,
    Finding,
    FindingInfo,
    Metadata,
    Product,
    Resource,
    SeverityId,
    User,
)
from orchestrator.policy.input import containment_input
from orchestrator.policy.models import ContainmentInput
from orchestrator.wiring.inventory import Inventory

SWEEP_TIME_MS = 1_796_227_200_000
PRODUCT = Product(name="bulkhead policy check")


@dataclass(frozen=True)
class SweptInput:
    subject: str  # "asset pump-9", "identity svc-scada": what the finding is about
    naming: str  # how the finding names it: "resource uid", "ip", "user"
    severity_id: int
    policy_input: ContainmentInput

    @property
    def shape(self) -> str:
        return f"severity {self.severity_id}, named by {self.naming}"


def _finding(severity: SeverityId, *, resource: str = "", ip: str = "", user: str = "") -> Finding:
    return Finding(
        finding_info=FindingInfo(uid=f"sweep-{resource or ip or user}", title="policy check sweep"),
        severity_id=severity,
        # Confident: a low-confidence finding is only observed, so it emits no step.
        confidence_id=ConfidenceId.HIGH,
        time=SWEEP_TIME_MS,
        resources=[Resource(uid=resource)] if resource else [],
        evidences=[_evidence(ip, user)] if ip or user else [],
        metadata=Metadata(product=PRODUCT),
    )


def _evidence(ip: str, user: str) -> Evidence:
    return Evidence(
        src_endpoint=Endpoint(ip=ip) if ip else None, user=User(name=user) if user else None
    )


def _namings(inventory: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, str]]]:
    """(subject, how it is named, the finding's naming fields) for every asset and identity."""
    for uid, asset in inventory.get("assets", {}).items():
        yield f"asset {uid}", "resource uid", {"resource": uid}
        if asset.get("ip"):
            yield f"asset {uid}", "ip", {"ip": str(asset["ip"])}
    for iid in inventory.get("identities", {}):
        yield f"identity {iid}", "user", {"user": iid}


def sweep_inputs(inventory: dict[str, Any]) -> Iterator[SweptInput]:
    """One policy input per subject, naming and severity; automation running, budget unspent."""
    enrich = Inventory(inventory)
    for subject, naming, fields in _namings(inventory):
        for severity in SeverityId:
            finding = _finding(severity, **fields)
            request = DecideRequest(incident_id=f"sweep:{subject}", findings=[finding])
            yield SweptInput(subject, naming, severity.value, containment_input(request, enrich))
