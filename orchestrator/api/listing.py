"""Listing incidents from Temporal visibility: filters in the query, pages by token.

Each incident keeps its search attributes and memo current (workflows/visibility.py), so
a page of 200 is one visibility call, however many incidents exist, and nothing is
filtered after the fact. A page that cannot be read is an error (503), never a shorter
list: a responder must not mistake "could not read" for "nothing waits for you".
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from contracts.incident import IncidentStatus
from contracts.visibility import CONTINUED, IDLE, Attribute, row, visible_view
from orchestrator.api.context import ApiContext
from orchestrator.api.problems import Problem, temporal_unavailable
from orchestrator.config import Settings
from orchestrator.responders.grants import approval_key
from orchestrator.temporal.errors import InvalidArgument, Unavailable, WorkflowCallError
from orchestrator.temporal.incidents import IncidentClient, Listed, quoted

UNPUBLISHED_QUERY_TIMEOUT = timedelta(seconds=1)
ZONE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # inventory zone names; safe to quote


@dataclass(frozen=True)
class Filters:
    status: IncidentStatus | None = None
    zone: str | None = None
    severity: int | None = None
    awaiting_approval: bool | None = None

    def query(self, task_queue: str) -> str:
        """The visibility query; every value is an enum, an int or a checked zone name."""
        # One row per incident: a run that continued as new lives on in the next one,
        # except the run that released an incident (its next run rests, hidden, or is the
        # entity's next incident). Runs marked resting or handed over never show.
        terms = [
            "WorkflowType = 'IncidentWorkflow'",
            f"TaskQueue = '{quoted(task_queue)}'",
            f"(ExecutionStatus != 'ContinuedAsNew' OR {Attribute.STATUS} = 'released')",
            f"({Attribute.STATUS} IS NULL OR {Attribute.STATUS} NOT IN ('{IDLE}', '{CONTINUED}'))",
        ]
        if self.status is not None:
            terms.append(f"{Attribute.STATUS} = '{self.status.value}'")
        if self.zone is not None:
            terms.append(f"{Attribute.ZONES} = '{quoted(self.zone)}'")
        if self.severity is not None:
            terms.append(f"{Attribute.SEVERITY} >= {int(self.severity)}")
        if self.awaiting_approval is not None:
            terms.append(f"{Attribute.AWAITING_APPROVAL} = {str(self.awaiting_approval).lower()}")
        return " AND ".join(terms)


# A page token is Temporal's, behind a MAC: Temporal answers a token it cannot read with
# an internal error, which its client retries for seconds before the API could say 503.
# The MAC lets the API refuse a token it never gave out at once, as a 400.
TOKEN_MAC_BYTES = 16
TOKEN_LABEL = b"bulkhead incidents page token\x00"  # the approval key's use here, apart


def _token_mac(settings: Settings, token: bytes) -> bytes:
    mac = hmac.new(approval_key(settings), TOKEN_LABEL + token, hashlib.sha256)
    return mac.digest()[:TOKEN_MAC_BYTES]


def _token_in(settings: Settings, page_token: str | None) -> bytes | None:
    if not page_token:
        return None
    refused = Problem(400, "page_token is not one this API gave out", slug="bad-page-token")
    try:
        raw = base64.urlsafe_b64decode(page_token.encode() + b"=" * (-len(page_token) % 4))
    except (binascii.Error, ValueError):
        raise refused from None
    mac, token = raw[:TOKEN_MAC_BYTES], raw[TOKEN_MAC_BYTES:]
    if not token or not hmac.compare_digest(mac, _token_mac(settings, token)):
        raise refused
    return token


def _token_out(settings: Settings, token: bytes | None) -> str | None:
    if not token:
        return None
    signed = _token_mac(settings, token) + token
    return base64.urlsafe_b64encode(signed).rstrip(b"=").decode()


async def list_page(
    context: ApiContext, filters: Filters, *, limit: int, page_token: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of incident rows, newest first, and the token of the next page."""
    incidents = IncidentClient(context.client)
    try:
        listed, token = await incidents.page(
            filters.query(context.settings.task_queue),
            page_size=limit,
            next_page_token=_token_in(context.settings, page_token),
        )
    except InvalidArgument as exc:
        if page_token:
            raise Problem(
                400, f"page_token refused: {exc.message}", slug="bad-page-token"
            ) from None
        raise temporal_unavailable(f"cannot list incidents: {exc.message}") from None
    except Unavailable as exc:
        raise temporal_unavailable(f"cannot list incidents: {exc.message}") from None
    rows = await asyncio.gather(*(_row(incidents, one) for one in listed))
    return list(rows), _token_out(context.settings, token)


async def _row(incidents: IncidentClient, listed: Listed) -> dict[str, Any]:
    if listed.published is not None:
        return row(listed.workflow_id, listed.published)
    # Not published yet: started a moment ago (its first workflow task publishes), or by a
    # version before incidents published themselves. Ask it briefly; if it cannot answer
    # now, list it anyway, marked, rather than fail the page or leave it out.
    try:
        view = await incidents.state(listed.workflow_id, rpc_timeout=UNPUBLISHED_QUERY_TIMEOUT)
    except WorkflowCallError:
        return {"incident_id": listed.workflow_id, "status": IncidentStatus.OPEN.value,
                "published": False}  # fmt: skip
    return row(listed.workflow_id, visible_view(view))
