"""Liveness and readiness: ready means a finding posted now would be contained."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, GetSystemInfoRequest
from temporalio.service import RPCError

from orchestrator.api.context import ApiContext, get_context
from orchestrator.api.problems import problem_response

router = APIRouter()
CHECK_TIMEOUT = timedelta(seconds=2)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _checks(context: ApiContext) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    service = context.client.workflow_service
    try:
        await service.get_system_info(GetSystemInfoRequest(), timeout=CHECK_TIMEOUT)
        checks["temporal"] = {"ok": True, "address": context.settings.temporal_address}
    except (RPCError, RuntimeError) as exc:
        checks["temporal"] = {"ok": False, "error": str(exc)}
    if checks["temporal"]["ok"]:
        try:
            response = await service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=context.settings.temporal_namespace,
                    task_queue=TaskQueue(name=context.settings.task_queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                ),
                timeout=CHECK_TIMEOUT,
            )
            pollers = len(response.pollers)
            checks["worker"] = {
                "ok": pollers > 0,
                "pollers": pollers,
                "task_queue": context.settings.task_queue,
            }
        except RPCError as exc:
            checks["worker"] = {"ok": False, "error": str(exc)}
    else:
        checks["worker"] = {"ok": False, "error": "Temporal is unreachable"}
    engine = context.engine
    checks["policy"] = (
        {"ok": True, "version": engine.version}
        if engine is not None
        else {"ok": False, "error": "no policy loaded"}
    )
    return checks


@router.get("/readyz", response_model=None)
async def readyz(
    context: Annotated[ApiContext, Depends(get_context)],
) -> dict[str, Any] | JSONResponse:
    checks = await _checks(context)
    failing = sorted(name for name, check in checks.items() if not check["ok"])
    if failing:
        return problem_response(
            503,
            f"not ready: {', '.join(failing)}",
            slug="not-ready",
            headers={"Retry-After": "5"},
            checks=checks,
        )
    return {"status": "ready", "checks": checks}
