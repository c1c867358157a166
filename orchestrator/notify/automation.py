"""Automation paused or resumed: read from the city record, not the audit trail (the city
workflow keeps the kill switch; no incident's trail records it).

The notifier asks the record every few seconds; the first answer is where it starts (a
worker starting while automation is paused does not page again that it is paused).
"""

from __future__ import annotations

from typing import Protocol

import structlog

from contracts.city import CityView
from orchestrator.notify.notices import Kind, Notice

log = structlog.get_logger(__name__)

CITY = "city"  # the notice's incident id: the whole city
POLL_S = 5.0


class CityReader(Protocol):
    async def view(self) -> CityView: ...


class AutomationWatch:
    def __init__(self, city: CityReader) -> None:
        self._city = city
        self._paused: bool | None = None
        self._seq = 0

    async def check(self) -> Notice | None:
        """A notice when the switch moved since the last look; None otherwise or when the
        record cannot be read now (it is read again next time)."""
        try:
            view = await self._city.view()
        except Exception as exc:  # noqa: BLE001 - unreadable now: asked again later
            log.warning("notify.city_unreadable", error=repr(exc))
            return None
        before, self._paused = self._paused, view.paused
        if before is None or before == view.paused:
            return None
        self._seq += 1
        kind = Kind.AUTOMATION_PAUSED if view.paused else Kind.AUTOMATION_RESUMED
        reason = f"by {view.changed_by or 'someone'}: {view.reason or 'no reason given'}"
        return Notice(kind, CITY, self._seq, view.changed_at or "", None, reason)
