"""Policy input: everything a decision needs, resolved in Python so the Rego stays pure."""

from __future__ import annotations

from typing import Any

from orchestrator.inventory import Inventory
from workflows.model import DecideRequest


def containment_input(
    request: DecideRequest,
    inventory: Inventory,
    *,
    automation_paused: bool = False,
    active_containments: int = 0,
) -> dict[str, Any]:
    """Input of `data.bulkhead.containment.decision`.

    `active_containments` is the city-wide count of automatic containments in force, for
    the blast-radius budget; `automation.paused` is the responders' kill switch.
    """
    assets = inventory.asset_records(inventory.asset_ids_for(request.findings))
    return {
        "incident_id": request.incident_id,
        "findings": [f.model_dump(mode="json", exclude={"raw_data"}) for f in request.findings],
        "assets": assets,
        "automation": {"paused": automation_paused or request.automation_paused},
        "active_containments": active_containments,
    }
