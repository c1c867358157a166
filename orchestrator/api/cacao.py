"""`GET /v1/incidents/{incident_id}/cacao`: the incident's containment as a CACAO 2.0
playbook (orchestrator/standards/cacao.py), for a SOAR or a CACAO tool to read or run.

A read like `GET /v1/incidents/{id}`: any role; 404 for an unknown incident. The
inventory gives the OpenC2 commands their addresses; without it, network steps are
written as manual commands.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from contracts.incident import IncidentView
from orchestrator.api import examples
from orchestrator.api.access import BEARER, Reader
from orchestrator.api.context import ApiContext, get_context
from orchestrator.responders.service import Responders
from orchestrator.standards.cacao import playbook
from orchestrator.standards.openc2 import Addresses
from orchestrator.wiring.inventory import Inventory

router = APIRouter()


def _addresses(context: ApiContext) -> Addresses:
    """The served policy's inventory, else the one on disk; none if neither can be read."""
    inventory = context.engine.inventory() if context.engine is not None else None
    if inventory is None:
        try:
            inventory = Inventory.load(context.settings.policy_dir)
        except (OSError, ValueError):
            return Addresses()
    return Addresses.from_inventory(inventory.data)


def _example() -> dict[str, Any]:
    """The documented answer: the documented incident (a gated Modbus fallback) and a
    workstation's quarantine, exported as the route would."""
    quarantine = {
        **examples.STEP,
        "id": "quarantine:eng-ws-03",
        "adapter": "nftables",
        "action": "contain",
        "target": {"device": "eng-ws-03"},
        "args": {"timeout_s": 1800},
        "lease_s": 1800,
        "preview": None,
    }
    view = IncidentView.model_validate(
        {
            **examples.INCIDENT,
            "steps": [examples.STEP, quarantine],
            "findings": [
                {
                    "finding_info": {"uid": "det-1", "title": "Unauthorized Modbus writes"},
                    "severity_id": 4,
                    "time": 1796227200000,
                    "resources": [{"uid": "tsc-0002"}],
                    "metadata": {"product": {"name": "Lab ICS Monitor"}},
                }
            ],
        }
    )
    addresses = Addresses(assets={"eng-ws-03": "198.18.40.33"})
    return playbook(view, addresses=addresses, api_url="https://bulkhead.example:8443")


@router.get(
    "/v1/incidents/{incident_id}/cacao",
    openapi_extra={"security": BEARER},
    responses={
        200: {
            "description": "the incident's containment as a CACAO 2.0 playbook",
            "content": {"application/json": {"example": _example()}},
        }
    },
)
async def get_cacao_playbook(
    incident_id: str, _reader: Reader, context: Annotated[ApiContext, Depends(get_context)]
) -> dict[str, Any]:
    """Each step an action step: its OpenC2 command (openc2-http: SLPF for network
    containment, ER for accounts) or a manual one; approval gates as manual steps naming
    the roles; leases as the revert step's delay; a failure leads to the roll back."""
    view = await Responders(context).incident(incident_id)
    addresses = await asyncio.to_thread(_addresses, context)
    return playbook(view, addresses=addresses, api_url=context.settings.api_url)
