"""The city-wide record (kill switch, active automatic containments) as the orchestrator
reads and changes it: a thin typed client of the CityWorkflow singleton.

It stays apart from the incident client (incidents.py) because the workers read it too,
through the `CityState` protocol, and tests stand in a `StaticCity` for it; what a
responder reads or changes raises the same domain errors (temporal/errors.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from contracts.city import MEMO_ACTIVE, MEMO_PAUSED, AutomationChange, CityView, city_workflow_id
from orchestrator.config import Settings
from orchestrator.temporal.errors import Unavailable
from workflows.city import CityWorkflow

READ_TIMEOUT = timedelta(seconds=2)


class CityState(Protocol):
    async def snapshot(self) -> CityView: ...


class StaticCity:
    """A fixed city record, for tests and tools that evaluate policy offline."""

    def __init__(self, view: CityView | None = None) -> None:
        self.view = view or CityView()

    async def snapshot(self) -> CityView:
        return self.view


class TemporalCity:
    def __init__(self, client: Client, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        self.workflow_id = city_workflow_id(settings.task_queue)

    async def ensure(self) -> None:
        """Start the singleton if it is not running (idempotent, safe from every process)."""
        await self._client.start_workflow(
            CityWorkflow.run,
            None,
            id=self.workflow_id,
            task_queue=self._settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # Readable before the first workflow task runs, so a decision made right
            # after a fresh start does not find the record empty and fail closed.
            memo={MEMO_PAUSED: False, MEMO_ACTIVE: 0},
        )

    async def snapshot(self) -> CityView:
        """What a decision needs (kill switch, count in force), from the memo: the server
        answers it without a round trip through a worker."""
        handle = self._client.get_workflow_handle(self.workflow_id)
        description = await handle.describe(rpc_timeout=READ_TIMEOUT)
        paused = await description.memo_value(MEMO_PAUSED, None, type_hint=bool)
        active = await description.memo_value(MEMO_ACTIVE, 0, type_hint=int)
        if paused is None:
            raise RuntimeError(f"{self.workflow_id} has not published its state yet")
        # Keys stand in for the ledger entries; only their number matters to a decision.
        return CityView(paused=paused, active={f"#{i}": "" for i in range(active)})

    async def view(self) -> CityView:
        """The whole record (who paused, which containments), answered by a worker;
        Unavailable when Temporal cannot answer."""
        handle = self._client.get_workflow_handle_for(CityWorkflow.run, self.workflow_id)
        try:
            full: CityView = await handle.query(CityWorkflow.state, rpc_timeout=READ_TIMEOUT)
        except RPCError as exc:
            raise Unavailable(exc.message) from None
        return full

    async def set_paused(self, change: AutomationChange, *, paused: bool) -> CityView:
        """Pause or resume automatic containment (starting the record if need be);
        Unavailable when Temporal did not take it."""
        try:
            await self.ensure()
            handle = self._client.get_workflow_handle_for(CityWorkflow.run, self.workflow_id)
            update = CityWorkflow.pause if paused else CityWorkflow.resume
            view: CityView = await handle.execute_update(update, change)
        except RPCError as exc:
            raise Unavailable(exc.message) from None
        return view
