"""Reading the city right now from what the API already holds: the inventory and the
guardrails the policy decides with, the city record, incidents from Temporal visibility,
and, for a bounded number of incidents holding or awaiting a step, their own state.

Costs stay bounded whatever the city's state: visibility pages of 200 (at most
MAX_LISTED rows), at most MAX_DETAILED incident queries, DETAIL_CONCURRENCY at a time.
10,000 incidents waiting for approval are counted from visibility, not queried one by one.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio.client import WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError

from contracts.incident import IncidentView
from contracts.visibility import Attribute
from orchestrator.api.context import ApiContext
from orchestrator.api.listing import Filters, list_page
from orchestrator.api.problems import Problem
from orchestrator.city.assemble import HOLDING, WAITING, Reads, essential_services, picture
from orchestrator.city.model import CityPicture
from orchestrator.responders.errors import ResponderError
from orchestrator.responders.service import Responders
from orchestrator.temporal.errors import Unavailable
from orchestrator.wiring.inventory import Inventory

PAGE = 200
MAX_LISTED = 2_000
MAX_DETAILED = 200
DETAIL_CONCURRENCY = 16
RECENT = 8
RECENT_STATUSES = ("escalated", "released", "failed")  # failed: escalated, before #19


# Temporal did not answer: Unavailable/RPCError, or RuntimeError from a lazy client that
# cannot connect at all (as api/health.py reads it).
UNREADABLE = (Unavailable, RPCError, RuntimeError)


class CityUnavailable(Exception):  # noqa: N818 - raised as the API's 503
    """Neither the city record nor the incident list could be read: no picture."""

    def __init__(self, what: list[str]) -> None:
        super().__init__("; ".join(what))
        self.what = what


@dataclass(frozen=True)
class _Where(Filters):
    """Filters plus one more term of our own (a fixed string, never user input)."""

    term: str = ""

    def query(self, task_queue: str) -> str:
        return f"{super().query(task_queue)} AND {self.term}"


RUNNING = _Where(term="ExecutionStatus = 'Running'")
ENDED = _Where(term=f"{Attribute.STATUS} IN ({', '.join(repr(s) for s in RECENT_STATUSES)})")


def inventory_of(context: ApiContext) -> Inventory:
    """The inventory the policy decides with (it moves with a reload), else the file's."""
    held = context.engine.inventory() if context.engine is not None else None
    return held if held is not None else Inventory.load(context.settings.policy_dir)


def budget_max(context: ApiContext) -> int | None:
    bundle = context.engine.bundle if context.engine is not None else None
    data: Any = bundle.data.get("guardrails") if bundle is not None else None
    if data is None:
        try:
            path = context.settings.policy_dir / "data" / "guardrails.json"
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
    value = (data.get("blast_radius") or {}).get("max_automatic_containments")
    return int(value) if isinstance(value, int) else None


def _why(exc: Exception) -> str:
    if isinstance(exc, Problem):
        return exc.detail
    return getattr(exc, "message", None) or " ".join(str(exc).split()) or type(exc).__name__


async def _city(context: ApiContext, reads: Reads) -> None:
    try:
        reads.city = await context.city.view()
    except (*UNREADABLE, WorkflowQueryFailedError, WorkflowQueryRejectedError) as exc:
        reads.unavailable.append(f"city record (automation, budget): {_why(exc)}")


async def _listed(context: ApiContext, filters: Filters, most: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    token: str | None = None
    while len(rows) < most:
        page, token = await list_page(
            context, filters, limit=min(PAGE, most - len(rows)), page_token=token
        )
        rows += page
        if not token:
            break
    return rows


async def _running(context: ApiContext, reads: Reads) -> None:
    try:
        rows = await _listed(context, RUNNING, MAX_LISTED + 1)
    except (Problem, *UNREADABLE) as exc:
        reads.unavailable.append(f"incident list (containments, approvals): {_why(exc)}")
        return
    reads.truncated = len(rows) > MAX_LISTED
    reads.rows = rows[:MAX_LISTED]


async def _recent(context: ApiContext, reads: Reads) -> None:
    try:
        reads.recent = await _listed(context, ENDED, RECENT)
    except (Problem, *UNREADABLE) as exc:
        reads.unavailable.append(f"recent incidents: {_why(exc)}")


def _worth_reading(row: dict[str, Any]) -> bool:
    states = set((row.get("steps") or {}).values())
    return bool(states & HOLDING) or WAITING in states or bool(row.get("awaiting_approval"))


async def _details(context: ApiContext, reads: Reads) -> None:
    """Running incidents whose list row says they hold or await a step, read one by one,
    at most MAX_DETAILED (newest first); beyond it, the rows' own step states count.
    Others are not read: an incident lists its steps as soon as its decision makes them
    (workflows/deciding.py LIST_EARLY_PATCH), and a live home page must not query every
    open incident each time it refreshes."""
    chosen = [r for r in reads.rows or [] if _worth_reading(r)]
    if len(chosen) > MAX_DETAILED:
        reads.truncated = True
    chosen = chosen[:MAX_DETAILED]
    gate = asyncio.Semaphore(DETAIL_CONCURRENCY)
    responders = Responders(context)

    async def read(incident_id: str) -> IncidentView | None:
        async with gate:
            try:
                return await responders.incident(incident_id)
            except ResponderError:
                return None

    ids = [str(r["incident_id"]) for r in chosen]
    views = await asyncio.gather(*(read(i) for i in ids))
    reads.details = {i: v for i, v in zip(ids, views, strict=True) if v is not None}
    missed = len(ids) - len(reads.details)
    if missed:
        reads.unavailable.append(f"{missed} incident(s) could not be read one by one")


async def gather(context: ApiContext, *, now: datetime | None = None) -> CityPicture:
    """The picture; `CityUnavailable` when Temporal answered neither the city record nor
    the incident list (nothing in it would be true)."""
    inventory = inventory_of(context)
    reads = Reads(inventory=inventory.data, now=now or datetime.now(UTC))
    reads.budget_max = budget_max(context)
    services = essential_services(inventory.data)
    health_task = asyncio.ensure_future(
        context.city_health.health(context.settings, inventory, services)
    )
    await asyncio.gather(_city(context, reads), _running(context, reads), _recent(context, reads))
    if reads.city is None and reads.rows is None:
        health_task.cancel()
        raise CityUnavailable(reads.unavailable)
    await _details(context, reads)
    reads.health = await health_task
    return picture(reads)
