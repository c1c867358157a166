"""A storm that keeps posting through failures, as a SIEM would: every finding is signed,
retried on 503 or a broken connection, and sent to the next API when one is gone. Only
a 202 counts as acknowledged; those are the findings that must never be lost."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from drills.stack import Stack, finding
from orchestrator.ingest.signatures import sign

RETRY_FOR_S = 90.0


@dataclass
class StormResult:
    acknowledged: dict[str, str] = field(default_factory=dict)  # finding uid -> incident id
    retries: int = 0
    gave_up: int = 0
    elapsed_s: float = 0.0


def storm_findings(run: str, n: int, entities: int, assets: list[str]) -> list[dict[str, Any]]:
    """Medium findings spread over entities, plus one high finding per traffic asset (a
    containment step each, so exactly-once can be counted on the controllers)."""
    items = [
        finding(f"drill-{run}-entity-{i % entities}", f"{run}-m-{i}", severity_id=3)
        for i in range(n)
    ]
    for index, asset in enumerate(assets):
        items.insert((index + 1) * n // (len(assets) + 1), finding(asset, f"{run}-h-{asset}"))
    return items


async def run_storm(
    stack: Stack,
    api_ports: Callable[[], list[int]],
    items: list[dict[str, Any]],
    *,
    clients: int = 16,
    at_count: int | None = None,
    disruption: Callable[[], Awaitable[None]] | None = None,
) -> StormResult:
    """Post every item; when `at_count` findings are acknowledged, run `disruption` once."""
    result = StormResult()
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    disrupted = asyncio.Event()
    disruption_task: asyncio.Task[None] | None = None

    async def post(http: httpx.AsyncClient, item: dict[str, Any], turn: int) -> bool:
        body = json.dumps(item).encode()
        headers = sign(
            body, stack.secret, msg_id=f"msg_{uuid.uuid4().hex}", timestamp=int(time.time())
        )
        headers["content-type"] = "application/json"
        ports = api_ports()
        port = ports[turn % len(ports)]
        try:
            response = await http.post(
                f"http://127.0.0.1:{port}/v1/webhooks/generic", content=body, headers=headers
            )
        except httpx.HTTPError:
            return False
        if response.status_code != 202:
            return False
        for accepted in response.json()["findings"]:
            result.acknowledged[item["finding_info"]["uid"]] = accepted["incident_id"]
        return True

    async def client_loop(index: int) -> None:
        nonlocal disruption_task
        async with httpx.AsyncClient(timeout=10) as http:
            turn = index
            while not queue.empty():
                item = queue.get_nowait()
                deadline = time.monotonic() + RETRY_FOR_S
                while not await post(http, item, turn):
                    result.retries += 1
                    turn += 1  # the next API, if there is another
                    if time.monotonic() > deadline:
                        result.gave_up += 1
                        break
                    await asyncio.sleep(0.2)
                if (
                    disruption is not None
                    and at_count is not None
                    and not disrupted.is_set()
                    and len(result.acknowledged) >= at_count
                ):
                    disrupted.set()
                    disruption_task = asyncio.ensure_future(disruption())

    started = time.perf_counter()
    await asyncio.gather(*(client_loop(i) for i in range(clients)))
    if disruption_task is not None:
        await disruption_task
    result.elapsed_s = time.perf_counter() - started
    return result


async def lost_findings(stack: Stack, result: StormResult) -> list[str]:
    """Acknowledged findings that no incident holds."""
    held: set[str] = set()
    for incident_id in sorted(set(result.acknowledged.values())):
        view = await stack.wait_view(incident_id, lambda v: True, timeout_s=60)
        held |= {f.finding_info.uid for f in view.findings}
    return sorted(uid for uid in result.acknowledged if uid not in held)
