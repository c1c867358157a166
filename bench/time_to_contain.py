"""Time-to-contain: signed webhook → step verified on the lab controller, and (as root)
a host quarantine verified in the lab gateway's nftables.

Baselines measured in the same run on the same dev server, interleaved with the rows
they are compared to: a bare workflow with one regular activity and one with one local
activity (on a worker without the sandbox, as ours runs); and the bare adapter call. Usage:
    .venv/bin/python bench/time_to_contain.py [--incidents 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baseline_workflows import OneActivity, OneLocalActivity, noop
from common import (
    dev_server,
    emit,
    free_port,
    history_shape,
    machine,
    median_timeline,
    percentiles_ms,
    published_after,
    wait_for_status,
)

from contracts.adapter import StepCommand
from contracts.incident import Principal, ReleaseRequest
from orchestrator import logs
from orchestrator.api.app import create_app
from orchestrator.api.context import build_context
from orchestrator.config import Settings, new_webhook_secret
from orchestrator.ingest.signatures import sign
from orchestrator.lab.network import CityNetwork
from orchestrator.lab.network import unavailable as network_unavailable
from orchestrator.lab.traffic import TrafficLab
from orchestrator.responders.grants import approval_key, granted
from orchestrator.runtime import freeze_heap
from orchestrator.temporal.city import TemporalCity
from orchestrator.temporal.incidents import IncidentClient
from orchestrator.wiring.inventory import Inventory
from orchestrator.wiring.worker import build_activities, build_worker

EXAMPLE = (
    Path(__file__).resolve().parent.parent / "examples/findings/traffic-controller-compromise.json"
)
# After each release: its tail (city ledger update, audit export) finishes before the next
# sample, so every sample starts on a quiet system, as the baselines do.
SETTLE_S = 0.2
RELEASE = ReleaseRequest(principal=Principal(name="bench", roles=["duty-officer"]), reason="bench")


Sample = Callable[[int], Awaitable[float]]
# Each workflow row's latest run, and the status that ends its timed part (None: its
# completion), whose history shape goes in the result beside the times.
LATEST_RUN: dict[str, tuple[str, str | None, str | None]] = {}
# Each workflow row's timed samples: every event up to the timed one, seconds after the send.
TIMELINES: dict[str, list[list[tuple[str, float]]]] = {}


@asynccontextmanager
async def bare(env: WorkflowEnvironment) -> AsyncIterator[dict[str, Sample]]:
    """The two bare baselines, on a worker built as ours is (no sandbox)."""
    queue = f"bench-{uuid.uuid4().hex[:8]}"

    def run(workflow_name: str, row: str) -> Sample:
        async def sample(index: int) -> float:
            del index
            workflow_id = f"b-{uuid.uuid4().hex}"
            LATEST_RUN[row] = (workflow_id, None, None)
            started = time.time()
            await env.client.execute_workflow(workflow_name, id=workflow_id, task_queue=queue)
            took, timeline = await published_after(env.client, workflow_id, since=started)
            TIMELINES.setdefault(row, []).append(timeline)
            return took

        return sample

    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[OneActivity, OneLocalActivity],
        activities=[noop],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        yield {
            "bare_one_activity_workflow": run("BenchOneActivity", "bare_one_activity_workflow"),
            "bare_one_local_activity_workflow": run(
                "BenchOneLocalActivity", "bare_one_local_activity_workflow"
            ),
        }


def adapter_only(settings: Settings) -> Sample:
    adapter = build_activities(settings)._adapters["modbus"]

    async def sample(index: int) -> float:
        command = StepCommand(
            incident_id=f"b{index}",
            step_id="s",
            adapter="modbus",
            action="set",
            target={"asset": "tsc-0002"},
            args={"mode": "flash" if index % 2 == 0 else "normal"},
        )
        started = time.perf_counter()
        receipt = await adapter.apply(command, key=command.idempotency_key)
        await adapter.verify(receipt)
        return time.perf_counter() - started

    return sample


def finding_about(asset: str, index: int, *, evidences: bool) -> dict[str, Any]:
    """The example finding about `asset`, under a fresh entity: one incident per sample."""
    template: dict[str, Any] = json.loads(EXAMPLE.read_text())
    finding = {
        **template,
        "resources": [{"uid": f"{asset}-bench-{index}-{uuid.uuid4().hex[:6]}"}, {"uid": asset}],
        "finding_info": {"uid": f"det-{asset}-{index}-{uuid.uuid4().hex}", "title": "bench"},
    }
    if not evidences:
        finding["evidences"] = []  # the example's addresses would implicate other assets
    return finding


@asynccontextmanager
async def containment(
    env: WorkflowEnvironment,
    settings: Settings,
    asset: str,
    row: str,
    *,
    evidences: bool = True,
    lab: TrafficLab | None = None,
) -> AsyncIterator[Sample]:
    """Webhook → every step of the incident about `asset` verified; each incident is then
    released outside the timed part (with `lab`: checking the release wrote unit 1 once)."""
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    # The real city record: every decision reads the kill switch and the ledger from it.
    city = TemporalCity(env.client, settings)
    await city.ensure()
    activities = build_activities(settings, city)
    context = build_context(settings, env.client, activities.engine, secret)
    transport = httpx.ASGITransport(app=create_app(context))
    incidents = IncidentClient(env.client)

    async def sample(index: int) -> float:
        body = json.dumps(finding_about(asset, index, evidences=evidences)).encode()
        headers = sign(body, secret, msg_id=f"m-{uuid.uuid4().hex}", timestamp=int(time.time()))
        headers["content-type"] = "application/json"
        started = time.time()
        response = await http.post("/v1/webhooks/generic", content=body, headers=headers)
        incident_id = response.json()["findings"][0]["incident_id"]
        # This run's id: the release below continues the incident as a new run.
        status, run = await wait_for_status(env.client, incident_id)
        LATEST_RUN[row] = (incident_id, "contained", run)
        view = await incidents.state(incident_id)
        if status == "failed" or not all(s.state.value == "verified" for s in view.steps):
            raise RuntimeError(f"{asset}: not every step verified: {view.escalations}")
        took, timeline = await published_after(
            env.client, incident_id, "contained", run, since=started
        )
        TIMELINES.setdefault(row, []).append(timeline)
        writes_before = lab.write_count(1) if lab is not None else 0
        # Released, not terminated: the city's blast-radius ledger must see it end,
        # and the rollback puts the target back for the next sample.
        release = granted(approval_key(settings), RELEASE, "release", incident_id)
        await incidents.release(incident_id, release)
        if lab is not None:
            assert lab.write_count(1) == writes_before + 1, "each release writes once"
        return took

    async with (
        build_worker(env.client, settings, activities),
        httpx.AsyncClient(transport=transport, base_url="http://bench") as http,
    ):
        yield sample


@asynccontextmanager
async def with_network_lab(
    env: WorkflowEnvironment, settings: Settings
) -> AsyncIterator[Sample | str]:
    """The nftables row's sampler, or why it is skipped (needs root and nft)."""
    reason = network_unavailable()
    if reason is not None:
        yield f"skipped: {reason}"
        return
    prefix = "bt-"
    network = CityNetwork.from_inventory(Inventory.load(settings.policy_dir), prefix=prefix)
    await network.start()
    try:
        nft_settings = settings.model_copy(
            update={"lab_netns_prefix": prefix, "task_queue": f"{settings.task_queue}-nft"}
        )
        # A host quarantine: the workstation has no safe mode.
        row = "containment_nftables_quarantine"
        async with containment(env, nft_settings, "eng-ws-03", row, evidences=False) as sample:
            yield sample
    finally:
        await network.stop()


async def interleaved(rows: dict[str, Sample], n: int) -> dict[str, list[float]]:
    """One sample of each row in turn, `n` rounds: a machine that slows down for a minute
    slows every row alike, so the ratios hold where the phases one after another did not."""
    samples: dict[str, list[float]] = {name: [] for name in rows}
    for index in range(n):
        for name, sample in rows.items():
            samples[name].append(await sample(index))
            await asyncio.sleep(SETTLE_S)
        if (index + 1) % 20 == 0:
            print(f"{index + 1}/{n} rounds", file=sys.stderr, flush=True)
    return samples


async def main(n: int) -> None:
    logs.configure("warning")
    lab = TrafficLab(port=free_port())
    await lab.start()
    env = await dev_server()
    try:
        settings = Settings(
            task_queue=f"bench-{uuid.uuid4().hex[:8]}",
            lab_modbus_port=lab.port,
            webhook_secret=new_webhook_secret(),
            # The guard's settle time is left at its default (1 s), as production runs: the
            # step is reported contained before the guard looks again (execution._watch).
            state_dir=Path(tempfile.mkdtemp(prefix="bulkhead-ttc-")),
        )
        async with (
            bare(env) as baselines,
            containment(env, settings, "tsc-0001", "containment_modbus", lab=lab) as modbus,
            with_network_lab(env, settings) as nft,
        ):
            rows: dict[str, Sample] = {
                **baselines,
                "bare_adapter_apply_verify": adapter_only(settings),
                "containment_modbus": modbus,
            }
            if not isinstance(nft, str):
                rows["containment_nftables_quarantine"] = nft
            # As `bulkhead worker` and `bulkhead up` do once they are built (run_parts):
            # a full collection then walks only what serving made, not every module.
            freeze_heap()
            await interleaved(rows, max(3, n // 20))  # warm-up, not kept
            TIMELINES.clear()
            samples = await interleaved(rows, n)
        result: dict[str, Any] = {
            "bench": "time_to_contain",
            "machine": machine(),
            "method": "interleaved, one sample of each row per round; from the client's send "
            "(webhook POST, in-process ASGI) to the server's history event that publishes "
            "`contained` (a bare baseline: its completion); every step then checked `verified`",
            **{name: percentiles_ms(taken) for name, taken in samples.items()},
        }
        if isinstance(nft, str):
            result["containment_nftables_quarantine"] = nft
        # Round trips behind the times: the containment's history up to `contained` against
        # the bare workflow's up to its completion (the latest sample of each).
        result["history_to_the_timed_event"] = {
            name: await history_shape(env.client, workflow_id, status, run)
            for name, (workflow_id, status, run) in LATEST_RUN.items()
        }
        # And when each of those events happened, median ms after the send: where the
        # difference between the rows is spent (docs/PERFORMANCE-HISTORY.md, session 12).
        result["timeline_ms"] = {name: median_timeline(t) for name, t in TIMELINES.items()}
        result["containment_p50_vs_bare_one_activity"] = round(
            result["containment_modbus"]["p50_ms"] / result["bare_one_activity_workflow"]["p50_ms"],
            2,
        )
        emit(result)
    finally:
        await env.shutdown()
        await lab.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--incidents", type=int, default=200)
    asyncio.run(main(parser.parse_args().incidents))
