"""After a restart, every held containment is verified again at once.

A restart is when containments are most often undone without anyone noticing: a lab or
a device that comes back in its normal mode, an agent that loses a revert (wazuh#376).
The drift schedule would catch it within `drift_check_s`; a worker or the lab that
starts asks each incident holding a step to check now (the `recheck` signal).
"""

from __future__ import annotations

import structlog
from temporalio.client import Client

from contracts.incident import IncidentStatus
from contracts.visibility import Attribute
from orchestrator.config import Settings
from orchestrator.temporal.errors import WorkflowCallError
from orchestrator.temporal.incidents import IncidentClient, quoted

log = structlog.get_logger(__name__)
# The statuses under which a step may hold a target (a failed incident may still hold one).
HOLDING = (
    IncidentStatus.CONTAINED,
    IncidentStatus.CONTAINING,
    IncidentStatus.ESCALATED,
    IncidentStatus.FAILED,
)


def holding_query(task_queue: str) -> str:
    statuses = ", ".join(f"'{status.value}'" for status in HOLDING)
    return (
        f"WorkflowType = 'IncidentWorkflow' AND TaskQueue = '{quoted(task_queue)}' "
        f"AND ExecutionStatus = 'Running' AND {Attribute.STATUS} IN ({statuses})"
    )


async def recheck_held(client: Client, settings: Settings, reason: str) -> int:
    """Signal every running incident that may hold a step; returns how many were asked.

    Never raises: a worker must start even when Temporal's visibility is slow, and the
    drift schedule still covers what this misses."""
    incidents = IncidentClient(client)
    asked = 0
    try:
        async for run in incidents.runs(holding_query(settings.task_queue)):
            try:
                await incidents.recheck(run.workflow_id, reason, run_id=run.run_id)
                asked += 1
            except WorkflowCallError as exc:  # ended in between: nothing to check
                log.info("recheck.skipped", incident_id=run.workflow_id, error=exc.message)
    except WorkflowCallError as exc:
        log.warning("recheck.not_listed", reason=reason, error=exc.message)
    log.info("recheck.requested", reason=reason, incidents=asked)
    return asked
