"""The city picture from what was read: a pure function, so every rule of it (which zone
a step counts in, when an approval is overdue, which state wins) is testable offline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contracts.city import CityView
from contracts.incident import IncidentView, ServiceHealth, StepView
from orchestrator.city import topology
from orchestrator.city.model import (
    Approvals,
    Automation,
    Budget,
    CityPicture,
    Contained,
    Recent,
    Service,
    Waiting,
    Zone,
    ordered,
    worst,
)
from orchestrator.responders import times

HOLDING = frozenset({"applied", "verified"})  # the step's change is in force
WAITING = "awaiting_approval"
UNKNOWN_ZONE_NOTE = "not in the inventory"


@dataclass
class Reads:
    """What the gatherer could read; None where a source could not be read."""

    inventory: dict[str, Any]
    now: datetime
    city: CityView | None = None
    budget_max: int | None = None
    rows: list[dict[str, Any]] | None = None  # running incidents, from visibility
    details: dict[str, IncidentView] = field(default_factory=dict)  # by incident id
    health: dict[str, ServiceHealth] = field(default_factory=dict)
    recent: list[dict[str, Any]] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    truncated: bool = False


def overdue_since(step: StepView, now: datetime) -> str | None:
    """When a waiting step became overdue: the workflow's mark (`overdue_since`, where
    the incident sets it), else its approval deadline once that has passed."""
    marked = step.overdue_since
    if marked:
        return str(marked)
    deadline = times.parse(step.approval_deadline)
    if deadline is not None and deadline <= now:
        return step.approval_deadline
    return None


def _since(view: IncidentView, step: StepView, city: CityView | None) -> str | None:
    """When the step took hold: the city ledger's time, else its audit line."""
    ledger = city.active.get(f"{view.incident_id}:{step.id}") if city else None
    if ledger:
        return ledger
    for entry in view.audit:
        if entry.kind == "step.verified" and entry.detail.get("step") == step.id:
            return entry.at
    return None


class _Zones:
    """Zones by id, in inventory order; a zone a step names but the inventory lacks is
    added (shown, never dropped)."""

    def __init__(self, inventory: dict[str, Any]) -> None:
        self.inventory = inventory
        self.contained: dict[str, list[Contained]] = {}
        self.waiting: dict[str, int] = {}
        self.overdue: dict[str, int] = {}
        self.pending = 0  # steps awaiting approval, each once (a step may span zones)
        self.ids: list[str] = [str(z) for z in (inventory.get("zones") or {})]

    def note(self, zone: str) -> str:
        if zone not in self.ids:
            self.ids.append(zone)
        return zone

    def count(self, table: dict[str, int], zones: list[str]) -> None:
        for zone in zones:
            table[self.note(zone)] = table.get(zone, 0) + 1


def _services(reads: Reads, zone_id: str, zone: dict[str, Any]) -> list[Service]:
    names = [str(s) for s in zone.get("essential_services") or []]
    for name, service in (reads.inventory.get("services") or {}).items():
        if service.get("zone") == zone_id and service.get("essential") and name not in names:
            names.append(str(name))
    found = []
    for name in names:
        health = reads.health.get(name)
        healthy = health.healthy if health else None
        detail = health.detail if health else "not probed"
        found.append(Service(id=name, healthy=healthy, detail=detail))
    return found


def essential_services(inventory: dict[str, Any]) -> list[str]:
    """Every service a zone depends on: what the picture probes."""
    names: set[str] = set()
    for zone_id, zone in (inventory.get("zones") or {}).items():
        names.update(str(s) for s in zone.get("essential_services") or [])
        for name, service in (inventory.get("services") or {}).items():
            if service.get("zone") == zone_id and service.get("essential"):
                names.add(str(name))
    return sorted(names)


def _steps(reads: Reads, zones: _Zones) -> list[Waiting]:
    """Fill the zones from each running incident: its steps, where it was read one by
    one; else its visibility row (steps waiting, counted in the incident's zones)."""
    waiting: list[Waiting] = []
    for row in reads.rows or []:
        view = reads.details.get(str(row.get("incident_id")))
        row_zones = [str(z) for z in row.get("zones") or []]
        if view is None:
            states = (row.get("steps") or {}).values()
            for _ in (s for s in states if s == WAITING):
                zones.pending += 1
                zones.count(zones.waiting, row_zones)
            continue
        for step in view.steps:
            in_zones = topology.zones_of_target(zones.inventory, step.target, row_zones)
            state = str(step.state.value if hasattr(step.state, "value") else step.state)
            target = topology.target_words(step.target)
            if state in HOLDING:
                held = Contained(
                    incident_id=view.incident_id,
                    step_id=step.id,
                    adapter=step.adapter,
                    action=step.action,
                    target=target,
                    state=state,
                    automatic=step.automatic,
                    since=_since(view, step, reads.city),
                    lease_expires_at=step.lease_expires_at,
                )
                for zone in in_zones:
                    zones.contained.setdefault(zones.note(zone), []).append(held)
            elif state == WAITING:
                late = overdue_since(step, reads.now)
                zones.pending += 1
                zones.count(zones.waiting, in_zones)
                if late:
                    zones.count(zones.overdue, in_zones)
                waiting.append(
                    Waiting(
                        incident_id=view.incident_id,
                        step_id=step.id,
                        zone=in_zones[0] if in_zones else None,
                        target=target,
                        approval_deadline=step.approval_deadline,
                        overdue=late is not None,
                        overdue_since=late,
                    )
                )
    return waiting


def _zone(reads: Reads, zones: _Zones, zone_id: str) -> Zone:
    record = (reads.inventory.get("zones") or {}).get(zone_id)
    known = isinstance(record, dict)
    zone: dict[str, Any] = record if isinstance(record, dict) else {}
    services = _services(reads, zone_id, zone)
    contained = zones.contained.get(zone_id, [])
    states = {"normal"}
    if any(s.healthy is False for s in services):
        states.add("unhealthy")
    if zones.waiting.get(zone_id):
        states.add("awaiting_approval")
    if contained:
        states.add("contained")
    return Zone(
        id=zone_id,
        description=str(zone.get("description", "")) if known else UNKNOWN_ZONE_NOTE,
        criticality=str(zone.get("criticality", "")),
        essential=bool(zone.get("essential", False)),
        state=worst(states),
        states=ordered(states),
        contained=contained,
        awaiting_approval=zones.waiting.get(zone_id, 0),
        overdue=zones.overdue.get(zone_id, 0),
        services=services,
    )


def picture(reads: Reads) -> CityPicture:
    zones = _Zones(reads.inventory)
    waiting = _steps(reads, zones)
    waiting.sort(key=lambda w: (not w.overdue, w.approval_deadline or "~", w.incident_id))
    city = reads.city
    pending: int | None = None
    if reads.rows is not None:
        pending = zones.pending
    return CityPicture(
        city=str(reads.inventory.get("city") or "city"),
        generated_at=reads.now.isoformat(),
        automation=Automation(
            paused=city.paused if city else None,
            changed_by=city.changed_by if city else None,
            changed_at=city.changed_at if city else None,
            reason=city.reason if city else None,
        ),
        budget=Budget(used=city.active_containments if city else None, max=reads.budget_max),
        zones=[_zone(reads, zones, z) for z in list(zones.ids)],
        conduits=topology.conduits(reads.inventory),
        enforcement_points=topology.enforcement_points(reads.inventory),
        approvals=Approvals(
            pending=pending,
            overdue=sum(1 for w in waiting if w.overdue) if reads.rows is not None else None,
            waiting=waiting,
        ),
        recent=[
            Recent(
                incident_id=str(r.get("incident_id", "")),
                status=str(r.get("status", "")),
                entity=str(r.get("entity", "")),
                zones=[str(z) for z in r.get("zones") or []],
                severity_id=int(r.get("severity_id") or 0),
            )
            for r in reads.recent
        ],
        unavailable=list(reads.unavailable),
        truncated=reads.truncated,
    )
