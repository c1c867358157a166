"""The essential-service guard: health of the services a step must not harm.

The workflow asks for a report before and after applying a step that names essential
services (the decision's `guard.essential`); a service healthy before and unhealthy after
gets the step rolled back. This module turns inventory probes into those reports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Protocol

from adapters.guard.probes import Probe, parse_probe, probe_all
from contracts.incident import GuardReport, ServiceHealth
from orchestrator.config import Settings
from orchestrator.wiring.inventory import Inventory

NO_PROBE = "no health probe configured"


class ServiceGuard(Protocol):
    # How long a change takes to show on a dependent service: the workflow waits this
    # long after a step before it probes again (GuardReport.settle_s).
    settle_s: float

    async def check(self, services: list[str], *, settle: bool) -> GuardReport:
        """Probe each service; `settle`: give a change just made time to show first."""
        ...


class Unguarded:
    """No probes configured anywhere: every service is reported as unknown, so the
    workflow never rolls back on the guard's word and the audit shows nothing was probed."""

    settle_s = 0.0

    async def check(self, services: list[str], *, settle: bool) -> GuardReport:
        del settle
        return GuardReport(
            services={name: ServiceHealth(healthy=None, detail=NO_PROBE) for name in services}
        )


class ProbeGuard:
    """Health from the probes the inventory lists per essential service (`services.<id>
    .probes`); a service without probes is reported as unknown, never as healthy."""

    def __init__(self, probes: Mapping[str, Sequence[Probe]], *, settle_s: float) -> None:
        self._probes = {name: list(found) for name, found in probes.items() if found}
        self.settle_s = settle_s

    @classmethod
    def from_inventory(cls, settings: Settings, inventory: Inventory) -> ProbeGuard:
        ports = {
            "http": settings.lab_http_port,
            "opcua": settings.lab_opcua_port,
            "modbus": settings.lab_modbus_port,
        }
        probes: dict[str, list[Probe]] = {}
        for name, service in inventory.data.get("services", {}).items():
            configs = service.get("probes", [])
            try:
                probes[name] = [
                    parse_probe(c, lab_host=settings.lab_host, lab_ports=ports) for c in configs
                ]
            except ValueError as exc:
                raise ValueError(f"inventory services.{name}.probes: {exc}") from exc
        return cls(probes, settle_s=settings.guard_settle_s)

    async def check(self, services: list[str], *, settle: bool) -> GuardReport:
        if settle and self.settle_s:
            # A change can take a moment to show on a dependent service.
            await asyncio.sleep(self.settle_s)
        watched = {name: self._probes[name] for name in services if name in self._probes}
        health = await probe_all(watched)
        report = {
            name: ServiceHealth(healthy=health[name].healthy, detail=health[name].detail)
            for name in watched
        }
        for name in services:
            report.setdefault(name, ServiceHealth(healthy=None, detail=NO_PROBE))
        return GuardReport(services=report)
