"""The console's approvals list says what approving does, in words, and when to decide
by, in UTC with its countdown; never the step's JSON (#19 part 5). Real worker, app,
Temporal dev server and lab controller: the words come from the adapter's real dry run."""

from __future__ import annotations

import html
import re

import httpx
from harness import wait_for
from temporalio.client import Client
from workflow_fakes import fallback_step, new_incident, send

from contracts.incident import StepState
from orchestrator.responders import times

from .conftest import StartStack

GATED = {
    "required": 2,
    "roles": ["responder", "duty-officer"],
    "must_include_roles": ["duty-officer"],
    "timeout_s": 600,
}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def test_a_waiting_step_is_listed_as_a_sentence_with_its_deadline_in_utc(
    console_stack: StartStack, temporal_client: Client
):
    async with console_stack([fallback_step("tsc-0002", approval=GATED)]) as stack:
        params = new_incident()
        await send(temporal_client, stack.settings, params)
        view = await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: bool(v.steps) and v.steps[0].state is StepState.AWAITING_APPROVAL,
        )
        async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http:
            form = await http.get("/console/login?next=/console/approvals")
            found = CSRF.search(form.text)
            assert found, form.text
            data = {"csrf": found.group(1), "token": stack.tokens["alice"], "next": "/console"}
            await http.post("/console/login", data=data)
            page = await http.get("/console/approvals")
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    row = text[text.index(f'data-step="{view.steps[0].id}"') :]
    row = row[: row.index("</tr>")]
    assert "set tsc-0002 to flash; was normal" in row
    deadline = view.steps[0].approval_deadline
    assert deadline is not None
    assert f"{times.utc(deadline)} (in " in row
    assert '{"asset"' not in row
    assert "asset=" not in row
    assert "overdue" not in row
