"""The probe's large-finding attacks (#15), through the real webhook, Temporal and the lab.

Before the claim check, findings were kept whole in workflow state: three 750 KB generic
findings, or twelve Suricata alerts with a 250 KB `payload_printable` (attacker-chosen
packet bytes), made the incident unreadable and unreleasable (`Blob data size exceeds
limit`), and six 990 KB findings failed the workflow task for good. Now each raw payload
goes to the store, the workflow keeps a bounded summary, and the incident stays readable,
approvable and releasable however much arrives: ten thousand 1 MB alerts included.

The decision is scripted (one step on the lab's traffic controller, waiting for one
approval); the policy is not what these tests are about. Everything else is real: the
HTTP API, the Suricata and OCSF connectors, the raw store, the Temporal dev server and
its payload limits, and the lab's Modbus controller that the step switches and releases.
"""

from __future__ import annotations

import asyncio
import copy
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import api_client, fresh_ip, make_settings, running_worker, signed, wait_for
from temporalio.client import Client
from workflow_fakes import ScriptedEngine, fallback_step, scripted_activities

from contracts.compact import FINDING_BYTES
from contracts.incident import IncidentStatus, StepState
from orchestrator.config import Settings
from orchestrator.ingest.entity import incident_id_for
from orchestrator.lab.traffic import MODE_FLASH, MODE_NORMAL, TrafficLab
from orchestrator.responders.principals import PrincipalStore
from workflows.kept import MAX_KEPT

EXAMPLES = Path(__file__).resolve().parent.parent / "examples/findings"
STEP = "fallback:tsc-0001"
ONE_APPROVAL = {"required": 1, "timeout_s": 3600}
BLOB_LIMIT = 2 * 1024 * 1024  # Temporal's default payload limit (the dev server's too)
MEGABYTE = 1024 * 1024


def eve_alert(src_ip: str, flow_id: int, printable_bytes: int) -> dict[str, Any]:
    """A Suricata alert as `eve.json` writes it with payload logging on (`payload: yes`,
    `payload-printable: yes`, `packet: yes`): the payload is the attacker's bytes."""
    record: dict[str, Any] = json.loads((EXAMPLES / "suricata.json").read_text())
    record.update(src_ip=src_ip, flow_id=flow_id)
    packet = ("POST /cgi-bin/ HTTP/1.1\r\nX: " + "A" * printable_bytes)[:printable_bytes]
    record["payload_printable"] = packet
    record["payload"] = ""  # base64 of the same bytes; left empty to keep the size honest
    record["stream"] = 0
    record["packet_info"] = {"linktype": 1}
    return record


def ocsf_finding(src_ip: str, index: int, padding: int) -> dict[str, Any]:
    """An OCSF Detection Finding whose producer sent a large `unmapped` section (kept,
    like every unknown attribute, in the raw payload)."""
    document: dict[str, Any] = json.loads(
        (EXAMPLES / "traffic-controller-compromise.json").read_text()
    )
    document["finding_info"]["uid"] = f"det-large-{src_ip}-{index}"
    document["resources"] = []
    document["evidences"][0]["src_endpoint"] = {"ip": src_ip}
    document["type_uid"] = 200401
    document["category_uid"] = 2
    document["unmapped"] = {"process_cmd_line": "x" * padding}
    return document


def canonical(body: bytes) -> str:
    return json.dumps(json.loads(body), sort_keys=True)


def tokens(settings: Settings) -> dict[str, str]:
    store = PrincipalStore(settings.principals_path)
    return {"Authorization": f"Bearer {store.add('rita', ['responder'])}"}


async def post(http: httpx.AsyncClient, settings: Settings, source: str, body: bytes) -> None:
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    headers = signed(body, secret)
    if source == "suricata" and body.count(b"\n") > 0:
        headers["content-type"] = "application/x-ndjson"
    response = await http.post(f"/v1/webhooks/{source}", content=body, headers=headers)
    assert response.status_code == 202, response.text[:500]


async def approve_and_release(
    http: httpx.AsyncClient,
    client: Client,
    settings: Settings,
    incident_id: str,
    lab: TrafficLab,
) -> dict[str, Any]:
    """The responder's path on the heavy incident: read, approve, see it hold, release."""
    who = tokens(settings)
    shown = await http.get(f"/v1/incidents/{incident_id}")
    assert shown.status_code == 200, shown.text[:500]
    assert len(shown.content) < BLOB_LIMIT
    approved = await http.post(
        f"/v1/incidents/{incident_id}/steps/{STEP}/approve",
        json={"reason": "heavy but real"},
        headers=who,
    )
    assert approved.status_code == 200, approved.text[:500]
    await wait_for(client, incident_id, lambda v: v.steps[0].state is StepState.VERIFIED, 60)
    assert await lab.read_mode(1) == MODE_FLASH
    released = await http.post(
        f"/v1/incidents/{incident_id}/release", json={"reason": "all clear"}, headers=who
    )
    assert released.status_code == 200, released.text[:500]
    assert released.json()["status"] == IncidentStatus.RELEASED.value
    assert await lab.read_mode(1) == MODE_NORMAL
    view: dict[str, Any] = shown.json()
    return view


def generic_750k(src_ip: str) -> Iterator[tuple[str, bytes]]:
    for index in range(3):
        yield "generic", json.dumps(ocsf_finding(src_ip, index, 750_000)).encode()


def suricata_250k(src_ip: str) -> Iterator[tuple[str, bytes]]:
    for flow in range(12):
        yield "suricata", json.dumps(eve_alert(src_ip, 7_000 + flow, 250_000)).encode()


def generic_990k(src_ip: str) -> Iterator[tuple[str, bytes]]:
    for index in range(6):
        yield "generic", json.dumps(ocsf_finding(src_ip, index, 990_000)).encode()


@pytest.mark.parametrize("attack", [generic_750k, suricata_250k, generic_990k])
async def test_large_findings_leave_the_incident_readable_approvable_and_releasable(
    temporal_client: Client, traffic_lab: TrafficLab, attack: Any
):
    settings = make_settings(traffic_lab.port)
    engine = ScriptedEngine([fallback_step("tsc-0001", approval=ONE_APPROVAL)])
    activities = scripted_activities(settings, engine)
    src_ip = fresh_ip()
    incident_id = incident_id_for(src_ip)
    payloads = list(attack(src_ip))
    async with (
        running_worker(temporal_client, settings, activities),
        api_client(temporal_client, settings, activities) as http,
    ):
        for source, body in payloads:
            await post(http, settings, source, body)
        await wait_for(
            temporal_client,
            incident_id,
            lambda v: (
                v.findings_received == len(payloads)
                and v.status is IncidentStatus.AWAITING_APPROVAL
            ),
            60,
        )
        view = await approve_and_release(http, temporal_client, settings, incident_id, traffic_lab)
        # Every raw payload is served whole, by the digest the incident names.
        served = []
        for finding in view["findings"]:
            assert len(json.dumps(finding).encode()) <= FINDING_BYTES
            raw = await http.get(f"/v1/raw/{finding['raw_ref']['sha256']}")
            assert raw.status_code == 200
            served.append(canonical(raw.content))
        assert sorted(served) == sorted(canonical(body) for _, body in payloads)
        listed = (await http.get("/v1/incidents", params={"limit": 200})).json()["incidents"]
    assert incident_id in [row["incident_id"] for row in listed]


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """This test's raw store ends up holding 10 GB: removed afterwards, pass or fail, so
    repeated runs do not fill the disk."""
    state = Path(tempfile.mkdtemp(prefix="bulkhead-claim-"))
    yield state
    shutil.rmtree(state, ignore_errors=True)


@pytest.mark.timeout(1800)
async def test_ten_thousand_one_megabyte_findings(
    temporal_client: Client, traffic_lab: TrafficLab, state_dir: Path
):
    """10,000 Suricata alerts of 1 MB each into one incident, in NDJSON batches of 16
    (max_body_bytes raised to fit a batch, as a deployment taking batches would)."""
    total, batch = 10_000, 16
    settings = make_settings(traffic_lab.port, max_body_bytes=20 * MEGABYTE, state_dir=state_dir)
    engine = ScriptedEngine([fallback_step("tsc-0001", approval=ONE_APPROVAL)])
    activities = scripted_activities(settings, engine)
    src_ip = fresh_ip()
    incident_id = incident_id_for(src_ip)
    template = eve_alert(src_ip, 0, MEGABYTE - 2048)
    started = time.monotonic()
    async with (
        running_worker(temporal_client, settings, activities),
        api_client(temporal_client, settings, activities) as http,
    ):
        batches = iter(range(0, total, batch))

        async def poster() -> None:
            # A few forwarders at once, as a SIEM pipeline posts: the batches interleave.
            for first in batches:
                lines = []
                for flow in range(first, min(first + batch, total)):
                    record = copy.copy(template)
                    record["flow_id"] = 1_000_000 + flow
                    lines.append(json.dumps(record))
                await post(http, settings, "suricata", ("\n".join(lines) + "\n").encode())
                if first % 2000 == 0:
                    print(f"posted {first} of {total} in {time.monotonic() - started:.0f} s")

        await asyncio.gather(*(poster() for _ in range(4)))
        view = await wait_for(
            temporal_client, incident_id, lambda v: v.findings_received == total, 300
        )
        assert view.run > 1, "the incident continued as new along the way"
        assert len(view.findings) <= MAX_KEPT
        await approve_and_release(http, temporal_client, settings, incident_id, traffic_lab)
    await assert_history_bounded(temporal_client, incident_id)
    print(f"10,000 x 1 MB: {time.monotonic() - started:.0f} s")


async def assert_history_bounded(client: Client, incident_id: str) -> None:
    """Every run of the incident stays far under Temporal's limits (50 MB and 51,200
    events of history, 2 MB per payload), the continue-as-new carry included."""
    runs = [run async for run in client.list_workflows(f"WorkflowId = '{incident_id}'")]
    assert len(runs) > 1
    for run in runs:
        handle = client.get_workflow_handle(incident_id, run_id=run.run_id)
        history = await handle.fetch_history()
        sizes = [event.ByteSize() for event in history.events]
        assert sum(sizes) < 20 * MEGABYTE, run.run_id
        assert len(sizes) < 20_000, run.run_id
        assert max(sizes) < MEGABYTE, run.run_id  # the carry and every signal included
