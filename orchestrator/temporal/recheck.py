"""After a restart, every held containment is verified again at once.

A restart is when containments are most often undone without anyone noticing: a lab or
a device that comes back in its normal mode, an agent that loses a revert (wazuh#376).
The drift schedule would catch it within `drift_check_s`; a worker or the lab that
starts asks each incident holding a step to check now (the `recheck` signal).
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from temporalio.client import Client
from temporalio.service import RPCError

from contracts.incident import IncidentStatus
from contracts.names import IncidentSignal
from contracts.visibility import STATUS
from orchestrator.config import Settings

log = structlog.get_logger(__name__)
RPC_TIMEOUT = timedelta(seconds=10)
# The statuses under which a step may hold a target (a failed incident may still hold one).
HOLDING = (IncidentStatus.CONTAINED, IncidentStatus.CONTAINING, IncidentStatus.FAILED)


def holding_query(task_queue: str) -> str:
    statuses = ", ".join(f"'{status.value}'" for status in HOLDING)
    return (
        f"WorkflowType = 'IncidentWorkflow' AND TaskQueue = '{task_queue}' "
        f"AND ExecutionStatus = 'Running' AND {STATUS.name} IN ({statuses})"
    )


async def recheck_held(client: Client, settings: Settings, reason: str) -> int:
    """Signal every running incident that may hold a step; returns how many were asked.

    Never raises: a worker must start even when Temporal's visibility is slow, and the
    drift schedule still covers what this misses."""
    asked = 0
    try:
        async for execution in client.list_workflows(
            holding_query(settings.task_queue), rpc_timeout=RPC_TIMEOUT
        ):
            handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
            try:
                await handle.signal(IncidentSignal.RECHECK, reason, rpc_timeout=RPC_TIMEOUT)
                asked += 1
            except RPCError as exc:  # ended in between: nothing to check
                log.info("recheck.skipped", incident_id=execution.id, error=exc.message)
    except RPCError as exc:
        log.warning("recheck.not_listed", reason=reason, error=exc.message)
    log.info("recheck.requested", reason=reason, incidents=asked)
    return asked
