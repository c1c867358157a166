"""`bulkhead incidents show` tells a duty officer, in a 100-column terminal, per step: the
deadline (overdue when passed), the roles still needed, the dry-run plan in words, the
value read back, and who did each audited thing and why (#19 part 5).

The incident is real: the shipped policy, a worker and the API on the Temporal dev server,
the lab's Modbus controllers and OPC UA substation; the command runs as a user runs it.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from conftest import free_port
from harness import example_finding, make_settings, running_worker, serving, signed, wait_for
from rich.console import Console
from temporalio.client import Client

from contracts.incident import IncidentStatus, StepState
from orchestrator.api.app import create_app
from orchestrator.api.context import build_context
from orchestrator.cli import detail, render
from orchestrator.lab.substation import SubstationLab
from orchestrator.lab.traffic import TrafficLab
from orchestrator.responders import times
from orchestrator.responders.principals import PrincipalStore
from orchestrator.wiring.worker import build_activities

BULKHEAD = str(Path(sys.executable).parent / "bulkhead")
WIDTH = 100
REASON = (
    "RTU writes from an unknown engineering host, confirmed by the SOC on the phone with "
    "the substation crew at night"
)
RECORDED = json.loads((Path(__file__).parents[2] / "fixtures/steps/recorded.json").read_text())


@pytest.fixture
async def substation() -> AsyncIterator[SubstationLab]:
    lab = SubstationLab(port=free_port())
    await lab.start()
    try:
        yield lab
    finally:
        await lab.stop()


async def shown(url: str, token: str, incident_id: str) -> list[str]:
    """`bulkhead incidents show ID` in a 100-column terminal (COLUMNS, as a shell sets it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULKHEAD_")}
    env["COLUMNS"] = str(WIDTH)
    process = await asyncio.create_subprocess_exec(
        BULKHEAD,
        "incidents",
        "show",
        incident_id,
        "--api-url",
        url,
        "--token",
        token,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode().splitlines()


def block(lines: list[str], step_id: str) -> str:
    """One step's lines, from its header to the blank line after it, joined with spaces
    (so a wrapped value reads whole)."""
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{step_id}  "))
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return " ".join(" ".join(lines[start:end]).split())


async def test_show_tells_deadline_roles_plan_readback_and_who_why_in_100_columns(
    temporal_client: Client, traffic_lab: TrafficLab, substation: SubstationLab
):
    settings = make_settings(traffic_lab.port, lab_opcua_port=substation.port)
    secret = settings.webhook_secret.get_secret_value()
    store = PrincipalStore(settings.principals_path)
    reader = store.add("reader", ["viewer"])
    alice = store.add("alice", ["responder"])
    activities = build_activities(settings)
    context = build_context(settings, temporal_client, activities.engine, secret)
    # A resource of its own first: the incident is keyed on it, so this test's incident
    # is new on the shared dev server; the two lab assets give it its steps.
    entity = f"words-{uuid.uuid4().hex[:8]}"
    document = example_finding(
        finding_info={"uid": f"det-{entity}", "title": "RTU and signal writes"},
        resources=[{"uid": entity}, {"uid": "tsc-0001"}, {"uid": "rtu-e01"}],
    )
    body = json.dumps(document).encode()
    async with (
        running_worker(temporal_client, settings, activities),
        serving(create_app(context)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        posted = await http.post("/v1/webhooks/generic", content=body, headers=signed(body, secret))
        assert posted.status_code == 202, posted.text
        incident_id = posted.json()["findings"][0]["incident_id"]

        def ready(view):
            states = {s.id: s.state for s in view.steps}
            return states == {
                "fallback:tsc-0001": StepState.VERIFIED,
                "fallback:rtu-e01": StepState.AWAITING_APPROVAL,
            }

        await wait_for(temporal_client, incident_id, ready)
        approved = await http.post(
            f"/v1/incidents/{incident_id}/steps/fallback:rtu-e01/approve",
            json={"reason": REASON},
            headers={"Authorization": f"Bearer {alice}"},
        )
        assert approved.status_code == 200, approved.text
        view = await wait_for(
            temporal_client,
            incident_id,
            lambda v: (
                any(s.approvals for s in v.steps) and v.status is IncidentStatus.AWAITING_APPROVAL
            ),
        )
        lines = await shown(url, reader, incident_id)

    text = "\n".join(lines)
    too_long = [line for line in lines if len(line) > WIDTH]
    assert too_long == [], too_long
    assert lines[0].startswith(f"{incident_id}  awaiting_approval  entity {entity}")

    waiting = block(lines, "fallback:rtu-e01")
    (rtu,) = [s for s in view.steps if s.id == "fallback:rtu-e01"]
    assert rtu.approval_deadline is not None
    assert f"decide by {times.utc(rtu.approval_deadline)} (in " in waiting
    assert "plan set rtu-e01 to local_manual; was remote" in waiting
    assert "needs 1 more approval, including a duty-officer" in waiting
    assert f"approved alice (responder) at {times.utc(rtu.approvals[0].at)}: {REASON}" in waiting

    held = block(lines, "fallback:tsc-0001")
    assert "plan set tsc-0001 to flash; was normal" in held
    assert "read back mode flash (register reads back)" in held
    assert "lease until " in held and " UTC (in " in held

    # The audit says who and why: the approval by alice with her reason, whole.
    audit = " ".join(text[text.index("Audit, last") :].split())
    assert f"step.approval fallback:rtu-e01 by alice: {REASON}" in audit
    # Ids are never cut: each step id and the incident id is whole on one line.
    for whole in (incident_id, "fallback:rtu-e01", "fallback:tsc-0001"):
        assert any(whole in line for line in lines), whole


def _waiting_step(**changes):
    step = next(s for s in RECORDED["substation-rtu-writes"] if s["id"] == "fallback:rtu-e01")
    return {**step, **changes}


def test_a_passed_deadline_is_marked_overdue():
    step = _waiting_step()
    due = times.parse(step["approval_deadline"])
    assert due is not None
    later = due + timedelta(minutes=3)
    assert detail.deadline(step, later) == (f"{times.utc(due)} (3 min ago); OVERDUE")
    assert "OVERDUE" not in (detail.deadline(step, due - timedelta(minutes=1)) or "")


def test_overdue_since_from_the_workflow_is_shown_even_before_our_clock_agrees():
    since = datetime(2026, 12, 7, 0, 40, tzinfo=UTC).isoformat()
    step = _waiting_step(overdue_since=since)
    due = times.parse(step["approval_deadline"])
    assert due is not None
    said = detail.deadline(step, due - timedelta(minutes=5)) or ""
    assert said.endswith("; OVERDUE since 2026-12-07 00:40:00 UTC")


def test_roles_still_needed_count_only_what_approvers_so_far_lack():
    step = _waiting_step()
    # Recorded: alice (responder) approved; two are required, one a duty officer.
    assert detail.still_needed(step) == (
        "1 more approval, including a duty-officer (from: duty-officer, responder)"
    )
    officer = {**step["approvals"][0], "principal": "dora", "roles": ["duty-officer"]}
    assert detail.still_needed({**step, "approvals": [officer]}) == (
        "1 more approval (from: duty-officer, responder)"
    )
    assert detail.still_needed({**step, "state": "approved"}) is None


def test_an_unknown_status_and_unknown_fields_are_shown_as_they_are():
    """The lead adds `escalated` (and more may come): shown as is, never an error."""
    steps = RECORDED["shared-account-svc-scada"]
    view = {
        "incident_id": "inc-svc-scada",
        "status": "escalated",
        "entity": "svc-scada",
        "steps": [{**s, "state": "waiting_for_godot", "new_field": 1} for s in steps],
    }
    out = io.StringIO()
    render.incident_detail(view, Console(file=out, width=WIDTH))
    lines = out.getvalue().splitlines()
    assert lines[0] == "inc-svc-scada  escalated  entity svc-scada  findings 0"
    assert "revoke:svc-scada@vault-city  waiting_for_godot" in lines
    assert all(len(line) <= WIDTH for line in lines)


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        (
            {"step": "a", "principal": "dora", "reason": "confirmed", "principal_id": "local:dora"},
            "a by dora: confirmed",
        ),
        (
            {"verdict": "contain", "policy_version": "sha256:1", "reasons": []},
            "by policy: verdict contain",
        ),
        (
            {"step": "a", "error": "guard: dispatch unhealthy"},
            "a by bulkhead: guard: dispatch unhealthy",
        ),
        (
            {"services": ["emergency-dispatch"], "step": "b"},
            "b by bulkhead: services emergency-dispatch",
        ),
        ({}, "by bulkhead"),
    ],
)
def test_each_audit_line_says_who_and_why(entry, said):
    assert detail.who_and_why(entry) == said
