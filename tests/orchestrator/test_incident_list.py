"""The incident list comes from Temporal visibility and never hides a pending approval.

A probe posted one NDJSON batch of 1,000 Suricata alerts: the old list (the 200 newest
workflows, queried one by one, filtered afterwards, failures dropped) then showed none
of the two steps that waited for a person. Here the same batch arrives, plus two findings
whose steps wait for approval, and every filter runs in the visibility query.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

import httpx
from harness import (
    api_client,
    example_finding,
    make_settings,
    release_and_end,
    running_worker,
    signed,
    wait_for,
)
from temporalio.client import Client
from workflow_fakes import FakeModbusAdapter, ScriptedEngine, fallback_step, new_incident, send

from contracts.decision import Decision, DecisionStep, Verdict
from contracts.incident import Principal, ReleaseRequest
from orchestrator.activities import ContainmentActivities
from orchestrator.api.listing import _token_out
from orchestrator.config import REPO_ROOT
from orchestrator.policy.models import ContainmentInput
from orchestrator.responders.principals import PrincipalStore
from orchestrator.wiring.inventory import Inventory

GATED = {"required": 2, "roles": ["responder", "duty-officer"], "timeout_s": 3600}
ALERTS = 1000
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class ControllersWaitForPeople(ScriptedEngine):
    """Signal controllers get a step that waits for two people; anything else is observed."""

    version = "sha256:list-test"

    def __init__(self) -> None:
        super().__init__([])

    def decide(self, policy_input: ContainmentInput) -> Decision:
        controllers = [a.id for a in policy_input.assets if a.id.startswith("tsc-")]
        steps = [
            DecisionStep.model_validate(fallback_step(asset, approval=GATED))
            for asset in controllers
        ]
        return Decision(
            verdict=Verdict.CONTAIN if steps else Verdict.OBSERVE,
            steps=steps,
            policy_version=self.version,
            decision_id=str(uuid.uuid4()),
        )


def suricata_batch() -> bytes:
    """1,000 EVE alerts from 1,000 outside addresses: 1,000 incidents, nothing to contain."""
    alert: dict[str, Any] = json.loads((REPO_ROOT / "examples/findings/suricata.json").read_text())
    lines = []
    for index in range(ALERTS):
        # Scanned from outside at an address no asset has: the policy has nothing to do.
        one = {**alert, "src_ip": f"198.19.{index // 250}.{index % 250 + 1}"}
        one["dest_ip"] = "198.19.200.1"
        one["flow_id"] = alert["flow_id"] + index
        lines.append(json.dumps(one))
    return "\n".join(lines).encode()


def about(asset: str) -> dict[str, Any]:
    """A finding naming the asset without its zone (the inventory knows it), filed under
    an entity of its own: an incident keyed on the asset would outlive this test on the
    shared dev server and swallow the next test's findings about it."""
    entity = {"uid": f"list-test-{uuid.uuid4().hex[:8]}"}
    finding = example_finding(resources=[entity, {"uid": asset}], evidences=[])
    finding["finding_info"] = {"uid": f"det-{uuid.uuid4().hex}", "title": f"{asset} tampered"}
    return finding


async def every_row(http: httpx.AsyncClient, query: str = "") -> list[dict[str, Any]]:
    """All pages of the list, following next_page_token."""
    rows: list[dict[str, Any]] = []
    token = None
    while True:
        params = f"?limit=200{query}" + (f"&page_token={token}" if token else "")
        response = await http.get("/v1/incidents" + params)
        assert response.status_code == 200, response.text
        body = response.json()
        rows += body["incidents"]
        token = body["next_page_token"]
        if not token:
            return rows


async def until(check: Any, timeout_s: float = 180) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.5)


async def test_a_batch_of_1000_alerts_never_hides_the_two_steps_waiting_for_people(
    temporal_client: Client,
):
    settings = make_settings(1, webhook_max_array_items=ALERTS)
    inventory = Inventory.load(settings.policy_dir)
    activities = ContainmentActivities(
        ControllersWaitForPeople(), inventory, {"modbus": FakeModbusAdapter()}
    )
    secret = settings.webhook_secret.get_secret_value()
    batch = suricata_batch()
    async with (
        running_worker(temporal_client, settings, activities),
        api_client(temporal_client, settings, activities) as http,
    ):
        posted = await http.post(
            "/v1/webhooks/suricata",
            content=batch,
            headers={**signed(batch, secret), "content-type": "application/x-ndjson"},
        )
        assert posted.status_code == 202, posted.text[:500]
        waiting_ids = set()
        for asset in ("tsc-0001", "tsc-0002"):
            body = json.dumps(about(asset)).encode()
            answer = await http.post(
                "/v1/webhooks/generic", content=body, headers=signed(body, secret)
            )
            assert answer.status_code == 202, answer.text
            waiting_ids.add(answer.json()["findings"][0]["incident_id"])

        async def published_all() -> list[dict[str, Any]]:
            rows = await every_row(http)
            waiting = [r for r in rows if r["status"] == "awaiting_approval"]
            return rows if len(rows) >= ALERTS + 2 and len(waiting) == 2 else []

        rows = await until(published_all)
        if not rows:
            last = await every_row(http)
            statuses: dict[str, int] = {}
            for r in last:
                statuses[r["status"]] = statuses.get(r["status"], 0) + 1
            raise AssertionError(f"{len(last)} listed, by status {statuses}")
        awaiting = (await http.get("/v1/incidents?status=awaiting_approval")).json()
        flagged = (await http.get("/v1/incidents?awaiting_approval=true")).json()
        traffic = await every_row(http, "&zone=traffic")
        severe = await every_row(http, "&severity=6")
        pending_page = await console_pending(http, settings)
    assert len(rows) == ALERTS + 2, "every incident is listed, none dropped"
    assert len({r["incident_id"] for r in rows}) == ALERTS + 2, "pages do not overlap"
    assert {r["incident_id"] for r in awaiting["incidents"]} == waiting_ids
    assert {r["incident_id"] for r in flagged["incidents"]} == waiting_ids
    # The findings named no zone; the inventory puts both controllers in `traffic`.
    assert waiting_ids <= {r["incident_id"] for r in traffic}
    assert all("traffic" in r["zones"] for r in traffic)
    assert severe == []
    row = next(r for r in awaiting["incidents"] if "fallback:tsc-0001" in r["steps"])
    assert row["steps"] == {"fallback:tsc-0001": "awaiting_approval"}
    assert row["awaiting_approval"] is True
    for step in ("fallback:tsc-0001", "fallback:tsc-0002"):
        assert step in pending_page, f"the console's Pending approvals lacks {step}"


async def console_pending(http: httpx.AsyncClient, settings: Any) -> str:
    """The console's Pending approvals page, as a logged-in responder sees it."""
    token = PrincipalStore(settings.principals_path).add("rita", ["responder"])
    browser = {"accept": "text/html"}
    form = await http.get("/console/login", headers=browser)
    csrf = CSRF.search(form.text)
    assert csrf, form.text[:500]
    await http.post(
        "/console/login",
        data={"csrf": csrf.group(1), "token": token, "next": "/console/approvals"},
        headers=browser,
    )
    page = await http.get("/console/approvals", headers=browser)
    assert page.status_code == 200, page.text[:500]
    return page.text


async def test_a_released_incident_stays_listed_and_readable(temporal_client: Client):
    """Closed workflows are in visibility too: release does not make an incident vanish."""
    settings = make_settings(1)
    inventory = Inventory.load(settings.policy_dir)
    engine = ScriptedEngine([fallback_step("tsc-0003")])
    activities = ContainmentActivities(engine, inventory, {"modbus": FakeModbusAdapter()})
    params = new_incident()
    async with (
        running_worker(temporal_client, settings, activities),
        api_client(temporal_client, settings, activities) as http,
    ):
        await send(temporal_client, settings, params)
        await wait_for(temporal_client, params.incident_id, lambda v: v.status.value == "contained")
        await release_and_end(
            temporal_client,
            params.incident_id,
            ReleaseRequest(principal=Principal(name="dora", roles=["duty-officer"]), reason="x"),
        )

        async def listed_as_released() -> list[dict[str, Any]]:
            rows = (await http.get("/v1/incidents?status=released")).json()["incidents"]
            return [r for r in rows if r["incident_id"] == params.incident_id]

        (row,) = await until(listed_as_released, timeout_s=30)
        shown = await http.get(f"/v1/incidents/{params.incident_id}")
    assert row["steps"] == {"fallback:tsc-0003": "rolled_back"}
    assert shown.status_code == 200
    assert shown.json()["status"] == "released"


async def test_a_page_token_the_api_never_gave_out_is_a_400_not_a_temporal_error(
    temporal_client: Client,
):
    """Temporal answers a token it cannot read with an internal error that its client
    retries for seconds (the fuzzer found the API then said 503). A token is Temporal's
    behind the API's MAC, so junk, and a well-formed token signed with another key, are
    refused at once."""
    settings = make_settings(0)
    other = make_settings(0, approval_key=None)  # another deployment: a key of its own
    foreign = _token_out(other, b'{"RunID":"x"}')
    assert foreign is not None
    async with api_client(temporal_client, settings, None) as http:
        for token in ("abc", "W0ZpbHRlcmVkXQ", foreign):
            response = await http.get(f"/v1/incidents?page_token={token}")
            assert response.status_code == 400, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"].endswith("/bad-page-token")
            assert "page_token" in response.json()["detail"]
