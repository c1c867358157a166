"""What an incident publishes to Temporal visibility, so listing it needs no query of it.

The incident list filters on search attributes (status, zones, severity, waiting for
approval, entity) inside the visibility query, and reads each row's summary (findings,
verdict, steps) from the memo. Before this, listing queried every running incident one
by one (5 s each when a worker was slow) and filtered afterwards, dropping what it could
not read: a batch of 1,000 alerts hid the two steps that waited for a person.

The search attributes must exist in the namespace: `bulkhead up` and the test servers
start the dev server with them, and a worker refuses to start on a namespace that lacks
them (orchestrator.temporal.attributes), because an upsert of an unknown attribute fails the
workflow task for good.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from contracts.decision import Decision
from contracts.findings import Finding
from contracts.incident import IncidentStatus, IncidentView, StepState, StepView


class Attribute(StrEnum):
    """The incidents' search attributes, by name (typed keys: workflows/visibility.py)."""

    STATUS = "BulkheadStatus"  # keyword
    ZONES = "BulkheadZones"  # keyword list
    SEVERITY = "BulkheadSeverity"  # int
    AWAITING_APPROVAL = "BulkheadAwaitingApproval"  # bool
    ENTITY = "BulkheadEntity"  # keyword


MEMO_KEY = "summary"
# Statuses only the list sees, never an incident's own: a released incident's resting run
# (its release run is the row) and a run that handed over to the next (continue-as-new).
IDLE = "idle"
CONTINUED = "continued"


@dataclass(frozen=True)
class Visible:
    """One incident as the list shows it."""

    status: str
    zones: tuple[str, ...]
    severity: int
    awaiting_approval: bool
    entity: str
    findings: int
    verdict: str | None
    steps: tuple[tuple[str, str], ...]
    # The incident's own id (`<key>@<n>` for an entity's later incidents; "" before #15).
    incident_id: str = ""
    essential: bool = False  # a zone it touches is essential, or a step guards a service

    def memo(self) -> dict[str, Any]:
        summary = {"findings": self.findings, "verdict": self.verdict, "steps": dict(self.steps)}
        if self.incident_id:  # absent from incidents started before it was published
            summary.update(incident_id=self.incident_id, essential=self.essential)
        return {MEMO_KEY: summary}


@dataclass(frozen=True)
class FindingsShown:
    """What the list shows of an incident's kept findings: the zones their resources name,
    the highest severity, and how many there are."""

    zones: frozenset[str]
    severity: int
    count: int


def findings_shown(findings: Sequence[Finding]) -> FindingsShown:
    return FindingsShown(
        zones=frozenset(r.zone for f in findings for r in f.resources if r.zone),
        severity=max((int(f.severity_id) for f in findings), default=0),
        count=len(findings),
    )


def visible(
    *,
    status: IncidentStatus,
    entity: str,
    findings: FindingsShown,
    received: int,
    decision: Decision | None,
    steps: Sequence[StepView],
    incident_id: str = "",
) -> Visible:
    """The list's view of an incident, from the workflow's own fields (it is computed on
    every activation, so no IncidentView is built for it). Zones come from the findings
    and from the inventory's resolution of its assets (`decision.zones`): a SIEM rarely
    names the zone of what it saw."""
    zones = set(findings.zones)
    zones.update(decision.zones if decision else ())
    if incident_id:  # and the zones its steps act on (a network step names its zone)
        zones.update(str(s.target["zone"]) for s in steps if s.target.get("zone"))
    return Visible(
        status=status.value,
        zones=tuple(sorted(zones)),
        severity=findings.severity,
        awaiting_approval=any(s.state is StepState.AWAITING_APPROVAL for s in steps),
        entity=entity,
        findings=received or findings.count,
        verdict=decision.verdict.value if decision else None,
        steps=tuple((s.id, s.state.value) for s in steps),
        incident_id=incident_id,
        essential=bool(incident_id)
        and (bool(decision and decision.essential) or any(s.guard for s in steps)),
    )


def visible_view(view: IncidentView) -> Visible:
    """The same, from an incident's `state` query (one that has not published yet)."""
    return visible(
        status=view.status,
        entity=view.entity,
        findings=findings_shown(view.findings),
        received=view.findings_received,
        decision=view.decision,
        steps=view.steps,
        incident_id=view.incident_id,
    )


def row(incident_id: str, value: Visible) -> dict[str, Any]:
    """One line of `GET /v1/incidents`."""
    return {
        "incident_id": value.incident_id or incident_id,
        "status": value.status,
        "entity": value.entity,
        "severity_id": value.severity,
        "zones": list(value.zones),
        "awaiting_approval": value.awaiting_approval,
        "findings": value.findings,
        "verdict": value.verdict,
        "steps": dict(value.steps),
        "essential": value.essential,
    }
