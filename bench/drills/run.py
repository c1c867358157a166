"""Fault drills: break a running Bulkhead and prove it kept its promises.

    .venv/bin/python bench/drills/run.py [--kills 20] [--findings 2000]   (make drill)

1. worker SIGKILL mid-containment, `--kills` times: each time a new worker finishes the
   step; the controller must have been written exactly once, and the last step's lease
   must still revert it after the crash.
2. dev server restart during a storm (file-backed SQLite keeps the history).
3. API SIGKILL mid-request during a storm.
4. two workers and two APIs on one task queue; one of each SIGKILLed mid-storm.
After each: every 202-acknowledged finding is in an incident, every step was applied
exactly once (counted by the lab controllers), and `bulkhead audit verify` finds the trail
the workers shared intact. Prints a table, then one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from contracts.findings import Finding, FindingEnvelope
from contracts.incident import IncidentParams, StepState
from drills.stack import DRILL_LEASE_S, Stack, finding
from drills.storm import lost_findings, run_storm, storm_findings
from orchestrator import logs
from orchestrator.config import Settings
from orchestrator.lab.traffic import MODE_FLASH, MODE_NORMAL
from orchestrator.temporal.incidents import IncidentClient

UNITS = {"tsc-0001": 1, "tsc-0002": 2, "tsc-0003": 3, "tsc-0004": 4}


def log(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


async def contained(stack: Stack, incident_id: str, timeout_s: float = 60) -> None:
    await stack.wait_view(
        incident_id,
        lambda v: v.steps and all(s.state is StepState.VERIFIED for s in v.steps),
        timeout_s,
    )


async def drill_worker_sigkill(kills: int) -> dict[str, Any]:
    stack = Stack(short_leases=True, write_delay_s=0.3)
    await stack.start()
    worker = stack.start_worker()
    settings = Settings(task_queue=stack.queue, temporal_address=stack.server.address)
    resumes: list[float] = []
    duplicates = completed = 0
    lease_honoured = False
    try:
        assert stack.client is not None
        for run in range(kills):
            asset = list(UNITS)[run % len(UNITS)]
            unit = UNITS[asset]
            before = stack.lab.write_count(unit)
            incident_id = f"inc-kill-{run}-{uuid.uuid4().hex[:6]}"
            params = IncidentParams(incident_id=incident_id, entity=incident_id)
            envelope = FindingEnvelope(
                finding=Finding.model_validate(finding(asset, incident_id)),
                source="drill",
                received_at_ms=0,
            )
            await IncidentClient(stack.client).deliver(settings, params, envelope)
            deadline = time.monotonic() + 60
            while stack.lab.write_count(unit) == before:  # wait for the write to start
                if time.monotonic() > deadline:
                    raise TimeoutError("the worker never started writing")
                await asyncio.sleep(0.005)
            stack.kill(worker)  # mid-write: the controller is still busy for 0.3 s
            killed_at = time.perf_counter()
            worker = stack.start_worker()
            await contained(stack, incident_id)
            resumes.append(time.perf_counter() - killed_at)
            writes = stack.lab.write_count(unit) - before
            duplicates += max(0, writes - 1)
            completed += writes >= 1 and await stack.lab.read_mode(unit) == MODE_FLASH
            if run < kills - 1:
                await stack.release(incident_id)
            else:
                # The last one keeps its lease across the crash: it must still expire.
                await stack.wait_view(
                    incident_id,
                    lambda v: v.steps[0].state is StepState.ROLLED_BACK,
                    timeout_s=DRILL_LEASE_S + 30,
                )
                lease_honoured = await stack.lab.read_mode(unit) == MODE_NORMAL
            log(f"kill {run + 1}/{kills}: resumed in {resumes[-1]:.1f} s, writes {writes}")
        log("verifying the audit trail the workers wrote")
        audit_intact, report = stack.verify_audit()
        if not audit_intact:
            log(report)
    finally:
        await stack.stop()
    return {
        "drill": "worker SIGKILL mid-containment",
        "runs": kills,
        "complete_pct": round(100 * completed / kills, 1),
        "lost": 0,
        "duplicates": duplicates,
        "resume_max_s": round(max(resumes), 1),
        "leases_honoured": lease_honoured,
        "audit_intact": audit_intact,
    }


async def storm_drill(
    name: str, findings: int, apis: int, workers: int, disrupt: str
) -> dict[str, Any]:
    stack = Stack()
    await stack.start()
    for _ in range(workers):
        stack.start_worker()
    ports = [await stack.start_api() for _ in range(apis)]
    live_ports = list(ports)
    run = uuid.uuid4().hex[:6]
    items = storm_findings(run, findings, entities=20, assets=list(UNITS))
    writes_before = {unit: stack.lab.write_count(unit) for unit in UNITS.values()}
    resume_s = 0.0

    async def disruption() -> None:
        nonlocal resume_s
        started = time.perf_counter()
        if disrupt == "server":
            log("restarting the Temporal dev server")
            await stack.server.stop()
            await stack.server.start()
        elif disrupt == "api":
            log("SIGKILL the API mid-request, then start it again")
            port = live_ports[0]
            stack.kill(stack.apis[port])
            await stack.start_api(port)
        else:
            log("SIGKILL one worker and one API; the others carry on")
            stack.kill(stack.workers[0])
            stack.kill(stack.apis[live_ports[0]])
            live_ports.pop(0)
        resume_s = time.perf_counter() - started

    result = await run_storm(
        stack, lambda: live_ports, items, at_count=findings // 3, disruption=disruption
    )
    try:
        log("counting acknowledged findings back out of the incidents")
        lost = await lost_findings(stack, result)
        steps_ok = 0
        for asset, unit in UNITS.items():
            incident = result.acknowledged.get(f"{run}-h-{asset}")
            if incident is not None:
                view = await stack.wait_view(
                    incident,
                    lambda v: v.steps and all(s.state is StepState.VERIFIED for s in v.steps),
                )
                writes = stack.lab.write_count(unit) - writes_before[unit]
                steps_ok += writes == 1
                if writes != 1:
                    log(f"{asset}: {writes} writes; audit: {[e.kind for e in view.audit]}")
        duplicates = sum(
            max(0, stack.lab.write_count(unit) - writes_before[unit] - 1) for unit in UNITS.values()
        )
        log("verifying the audit trail the workers wrote")
        audit_intact, report = stack.verify_audit()
        if not audit_intact:
            log(report)
    finally:
        await stack.stop()
    return {
        "drill": name,
        "audit_intact": audit_intact,
        "runs": 1,
        "findings": len(items),
        "acknowledged": len(result.acknowledged),
        "gave_up": result.gave_up,
        "retries": result.retries,
        "complete_pct": round(
            100 * (len(result.acknowledged) - len(lost)) / max(1, len(result.acknowledged)), 1
        ),
        "steps_exactly_once": f"{steps_ok}/{len(UNITS)}",
        "lost": len(lost),
        "duplicates": duplicates,
        "resume_max_s": round(resume_s, 1),
        "leases_honoured": None,
    }


async def main(kills: int, findings: int, only: set[str] | None) -> list[dict[str, Any]]:
    logs.configure("warning")
    logging.getLogger("pymodbus").setLevel(logging.WARNING)  # the lab runs in this process
    drills = {
        "worker": lambda: drill_worker_sigkill(kills),
        "server": lambda: storm_drill("dev server restart mid-storm", findings, 1, 1, "server"),
        "api": lambda: storm_drill("API SIGKILL mid-request", findings, 1, 1, "api"),
        "pair": lambda: storm_drill(
            "2 workers + 2 APIs, one of each SIGKILLed", findings, 2, 2, "pair"
        ),
    }
    results = []
    for key, drill in drills.items():
        if only and key not in only:
            continue
        log(f"drill: {key}")
        results.append(await drill())
    return results


def table(results: list[dict[str, Any]]) -> str:
    columns = [
        "drill",
        "runs",
        "complete_pct",
        "lost",
        "duplicates",
        "resume_max_s",
        "leases_honoured",
        "audit_intact",
    ]
    lines = [" | ".join(columns), " | ".join("---" for _ in columns)]
    lines += [" | ".join(str(r.get(c, "")) for c in columns) for r in results]
    return "\n".join(lines)


if __name__ == "__main__":
    import json

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--findings", type=int, default=2000)
    parser.add_argument("--only", help="comma-separated: worker,server,api,pair")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    found = asyncio.run(main(args.kills, args.findings, only))
    print(table(found), file=sys.stderr)
    print(json.dumps({"bench": "drills", "results": found}, indent=2))
