"""Essential services' health for the city picture: the guard's own probes, cached.

A live page asks for the picture every few seconds, and several people may watch it: the
probes run at most once per `ttl_s` whoever asks, and one probe round at a time.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from contracts.incident import ServiceHealth
from orchestrator.config import Settings
from orchestrator.guard import ProbeGuard
from orchestrator.wiring.inventory import Inventory

DEFAULT_TTL_S = 5.0


class ServiceHealthCache:
    def __init__(
        self, *, ttl_s: float = DEFAULT_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._at = float("-inf")
        self._key: tuple[str, tuple[str, ...]] | None = None
        self._health: dict[str, ServiceHealth] = {}

    async def health(
        self, settings: Settings, inventory: Inventory, services: list[str]
    ) -> dict[str, ServiceHealth]:
        """Each named service's health; unknown (None) for a service without probes, and
        for all of them when the inventory's probes cannot be built (with the reason)."""
        # The probes as configured: a reloaded inventory that changed them probes again at once.
        configured = json.dumps(inventory.data.get("services"), sort_keys=True, default=str)
        key = (configured, tuple(sorted(set(services))))
        async with self._lock:
            if key != self._key or self._clock() - self._at >= self._ttl_s:
                self._health = await _probe(settings, inventory, list(key[1]))
                self._key, self._at = key, self._clock()
            return dict(self._health)


async def _probe(
    settings: Settings, inventory: Inventory, services: list[str]
) -> dict[str, ServiceHealth]:
    try:
        guard = ProbeGuard.from_inventory(settings, inventory)
    except ValueError as exc:
        return {name: ServiceHealth(healthy=None, detail=str(exc)) for name in services}
    report = await guard.check(services, settle=False)
    return dict(report.services)
