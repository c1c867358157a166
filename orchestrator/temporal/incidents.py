"""The one client of the incident workflows: start, signal, update, query and list.

Everyone outside a workflow who talks to an incident goes through `IncidentClient`: the
API's webhooks (signal-with-start), reads and responder actions, the console, the
restart recheck, the benchmarks and drills. Names come from contracts/names.py, payloads
are typed, and Temporal's errors leave here as the domain errors of temporal/errors.py:
no caller branches on an `RPCError` status or on the string "Refused", and nothing here
knows HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from contracts.findings import FindingEnvelope
from contracts.incident import (
    ApproveRequest,
    DenyRequest,
    ExtendRequest,
    IncidentParams,
    IncidentView,
    ReleaseRequest,
    ReleaseStepRequest,
    StepView,
)
from contracts.names import STATE_QUERY, ErrorType, IncidentSignal, IncidentUpdate
from contracts.visibility import Attribute, Visible
from orchestrator.config import Settings
from orchestrator.temporal.errors import (
    InvalidArgument,
    NotFound,
    Refused,
    Unavailable,
    UpdateFailed,
)
from workflows.incident import IncidentWorkflow
from workflows.visibility import published

QUERY_TIMEOUT = timedelta(seconds=5)
UPDATE_TIMEOUT = timedelta(seconds=10)
# A release waits in the workflow until every applied step is reverted.
RELEASE_TIMEOUT = timedelta(seconds=60)
LIST_TIMEOUT = timedelta(seconds=10)
SIGNAL_TIMEOUT = timedelta(seconds=10)


@dataclass(frozen=True)
class Listed:
    """One incident run as visibility lists it."""

    workflow_id: str
    run_id: str | None
    # What it published (status, zones, summary); None before its first workflow task.
    published: Visible | None


def incident_key(incident_id: str) -> str:
    """The entity key (the workflow id) of an incident id: `key`, or `key@n` for the
    entity's n-th incident."""
    return incident_id.partition("@")[0]


def canonical(incident_id: str) -> str:
    """`key@1` is the entity's first incident, whose id is the key itself."""
    key, _, sequence = incident_id.partition("@")
    return key if sequence == "1" else incident_id


def quoted(value: str) -> str:
    """A value safe inside a single-quoted visibility query literal."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


async def _listed(execution: WorkflowExecution) -> Listed:
    value = published(execution.typed_search_attributes, await execution.memo())
    return Listed(execution.id, execution.run_id, value)


class IncidentClient:
    """Typed calls on the incident workflows of one Temporal client (cheap to make)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    # --- start and signal ---------------------------------------------------------------

    async def deliver(
        self,
        settings: Settings,
        params: IncidentParams,
        envelope: FindingEnvelope,
        *,
        rpc_timeout: timedelta | None = None,
    ) -> WorkflowHandle[IncidentWorkflow, IncidentView]:
        """Signal-with-start of one finding (see deliver_many)."""
        return await self.deliver_many(settings, params, [envelope], rpc_timeout=rpc_timeout)

    async def deliver_many(
        self,
        settings: Settings,
        params: IncidentParams,
        envelopes: Sequence[FindingEnvelope],
        *,
        rpc_timeout: timedelta | None = None,
    ) -> WorkflowHandle[IncidentWorkflow, IncidentView]:
        """Signal-with-start: returns only once Temporal durably accepted the findings,
        all of them or none (one signal: `finding` for one, `findings` for several).

        The settings' drift check interval goes with a new incident unless the caller set
        one. Raises Unavailable when Temporal did not take them (the sender may redeliver:
        the workflow drops a finding it has seen)."""
        if "drift_check_s" not in params.model_fields_set:
            params = params.model_copy(update={"drift_check_s": settings.drift_check_s})
        one = len(envelopes) == 1
        try:
            return await self._client.start_workflow(
                IncidentWorkflow.run,
                params,
                id=params.incident_id,
                task_queue=settings.task_queue,
                start_signal=IncidentSignal.FINDING if one else IncidentSignal.FINDINGS,
                start_signal_args=[envelopes[0] if one else list(envelopes)],
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                rpc_timeout=rpc_timeout,
            )
        except RPCError as exc:
            raise Unavailable(exc.message) from exc

    async def recheck(
        self,
        key: str,
        reason: str,
        *,
        run_id: str | None = None,
        rpc_timeout: timedelta = SIGNAL_TIMEOUT,
    ) -> None:
        """Ask an incident to verify its held steps now (after a restart)."""
        handle = self._client.get_workflow_handle(key, run_id=run_id)
        try:
            await handle.signal(IncidentSignal.RECHECK, reason, rpc_timeout=rpc_timeout)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(exc.message) from None
            raise Unavailable(exc.message) from None

    # --- query --------------------------------------------------------------------------

    async def state(
        self, incident_id: str, *, rpc_timeout: timedelta | None = QUERY_TIMEOUT
    ) -> IncidentView:
        """An incident's state from its workflow's query.

        A key names the entity's current incident (the latest, released or not); `key@n`
        names one incident, found among the key's released runs when it is not the latest.
        NotFound when there is no such incident; Unavailable when Temporal cannot say."""
        key = incident_key(incident_id)
        if not key:  # "@2" names no entity; Temporal would refuse the empty workflow id
            raise NotFound(f"no incident {incident_id!r}")
        try:
            view = await self._state(key, None, rpc_timeout)
            wanted = canonical(incident_id)
            if "@" not in incident_id or view.incident_id == wanted:
                return view
            run_id = await self._released_run(key, wanted)
            if run_id is None:
                raise NotFound(f"no incident {incident_id!r}")
            return await self._state(key, run_id, rpc_timeout)
        except RPCError as exc:
            # An id Temporal cannot take (too long, say) names no incident either.
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                raise NotFound(exc.message) from None
            raise Unavailable(exc.message) from None

    async def _state(
        self, key: str, run_id: str | None, rpc_timeout: timedelta | None
    ) -> IncidentView:
        handle = self._client.get_workflow_handle(key, run_id=run_id)
        view: IncidentView = await handle.query(
            STATE_QUERY, result_type=IncidentView, rpc_timeout=rpc_timeout
        )
        return view

    async def _released_run(self, key: str, incident_id: str) -> str | None:
        """The run that released this incident (the one that stays listed), newest first."""
        query = f"WorkflowId = '{quoted(key)}' AND {Attribute.STATUS} = 'released'"
        async for execution in self._client.list_workflows(query, rpc_timeout=LIST_TIMEOUT):
            listed = await _listed(execution)
            # Released before incidents published their id: the key is the first one's.
            shown = listed.published.incident_id if listed.published else ""
            if (shown or listed.workflow_id) == incident_id:
                return listed.run_id
        return None

    # --- updates ------------------------------------------------------------------------

    async def approve(
        self, incident_id: str, request: ApproveRequest, *, rpc_timeout: timedelta = UPDATE_TIMEOUT
    ) -> StepView:
        step: StepView = await self._update(
            incident_id, IncidentUpdate.APPROVE, request, StepView, rpc_timeout
        )
        return step

    async def deny(
        self, incident_id: str, request: DenyRequest, *, rpc_timeout: timedelta = UPDATE_TIMEOUT
    ) -> StepView:
        step: StepView = await self._update(
            incident_id, IncidentUpdate.DENY, request, StepView, rpc_timeout
        )
        return step

    async def extend(
        self, incident_id: str, request: ExtendRequest, *, rpc_timeout: timedelta = UPDATE_TIMEOUT
    ) -> StepView:
        step: StepView = await self._update(
            incident_id, IncidentUpdate.EXTEND, request, StepView, rpc_timeout
        )
        return step

    async def release(
        self,
        incident_id: str,
        request: ReleaseRequest,
        *,
        rpc_timeout: timedelta = RELEASE_TIMEOUT,
    ) -> IncidentView:
        """Returns once the workflow reverted every applied step (the saga ran)."""
        view: IncidentView = await self._update(
            incident_id, IncidentUpdate.RELEASE, request, IncidentView, rpc_timeout
        )
        return view

    async def release_step(
        self,
        incident_id: str,
        request: ReleaseStepRequest,
        *,
        rpc_timeout: timedelta = RELEASE_TIMEOUT,
    ) -> StepView:
        """Returns once the workflow undid the step (or found it could not)."""
        step: StepView = await self._update(
            incident_id, IncidentUpdate.RELEASE_STEP, request, StepView, rpc_timeout
        )
        return step

    async def _update(
        self,
        incident_id: str,
        name: IncidentUpdate,
        request: Any,
        result_type: type[Any],
        rpc_timeout: timedelta,
    ) -> Any:
        """The update on the entity's current run (the workflow refuses a request whose
        `incident_id` names another incident of the entity)."""
        handle = self._client.get_workflow_handle(incident_key(incident_id))
        try:
            return await handle.execute_update(
                name, request, result_type=result_type, rpc_timeout=rpc_timeout
            )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.type == ErrorType.REFUSED:
                raise Refused(cause.message) from None
            raise UpdateFailed(str(cause)) from None
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:  # ended: nothing runs to take it
                raise NotFound(exc.message) from None
            raise Unavailable(exc.message) from None

    # --- list ---------------------------------------------------------------------------

    async def page(
        self, query: str, *, page_size: int, next_page_token: bytes | None = None
    ) -> tuple[list[Listed], bytes | None]:
        """One page of incident runs matching a visibility query, and the next page's token.

        InvalidArgument when Temporal refuses the query or the token; Unavailable else."""
        pages = self._client.list_workflows(
            query,
            page_size=page_size,
            next_page_token=next_page_token,
            rpc_timeout=LIST_TIMEOUT,
        )
        try:
            await pages.fetch_next_page()
        except RPCError as exc:
            if exc.status is RPCStatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(exc.message) from None
            raise Unavailable(exc.message) from None
        rows = await asyncio.gather(*(_listed(e) for e in pages.current_page or []))
        return list(rows), pages.next_page_token

    async def runs(self, query: str) -> AsyncIterator[Listed]:
        """Every run matching a visibility query, page after page; Unavailable when a
        page cannot be read (what was yielded before stands)."""
        try:
            async for execution in self._client.list_workflows(query, rpc_timeout=LIST_TIMEOUT):
                yield await _listed(execution)
        except RPCError as exc:
            raise Unavailable(exc.message) from None
