"""The essential-service guard: health of the services a step must not harm.

The workflow asks for a report before and after applying a step that names essential
services (the decision's `guard.essential`); a service healthy before and unhealthy after
gets the step rolled back. This module turns inventory probes into those reports.
"""

from __future__ import annotations

from typing import Protocol

from workflows.state import GuardReport, ServiceHealth


class ServiceGuard(Protocol):
    async def check(self, services: list[str], *, settle: bool) -> GuardReport:
        """Probe each service; `settle`: give a change just made time to show first."""
        ...


class Unguarded:
    """No probes configured anywhere: every service is reported as unknown, so the
    workflow never rolls back on the guard's word and the audit shows nothing was probed."""

    async def check(self, services: list[str], *, settle: bool) -> GuardReport:
        del settle
        return GuardReport(
            services={
                name: ServiceHealth(healthy=None, detail="no health probe configured")
                for name in services
            }
        )
