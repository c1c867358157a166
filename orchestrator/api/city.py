"""The city right now: `GET /v1/city` (JSON) and `GET /v1/city/map.svg` (the map).

Viewer and up, like every read. A source that cannot be read is named in the picture's
`unavailable` and its part left empty; only when Temporal answers neither the city
record nor the incident list is the answer a 503 naming both.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from orchestrator.api.access import BEARER, Reader
from orchestrator.api.context import ApiContext, get_context
from orchestrator.api.problems import problem_doc, temporal_unavailable
from orchestrator.city import draw
from orchestrator.city.gather import CityUnavailable, gather
from orchestrator.city.model import CityPicture

router = APIRouter()
SVG = "image/svg+xml"
# Each answer is the city right now: never cached by a browser or a proxy.
NO_STORE = {"Cache-Control": "no-store"}

EXAMPLE: dict[str, Any] = {
    "city": "Lab City",
    "generated_at": "2026-12-07T00:18:00+00:00",
    "timezone": "UTC",
    "automation": {
        "paused": True,
        "changed_by": "dora",
        "changed_at": "2026-12-07T00:10:00+00:00",
        "reason": "drill: every step needs a human",
    },
    "budget": {"used": 1, "max": 10},
    "zones": [
        {
            "id": "energy",
            "description": "Substations and distribution SCADA",
            "criticality": "critical",
            "essential": True,
            "state": "awaiting_approval",
            "states": ["awaiting_approval"],
            "contained": [],
            "awaiting_approval": 1,
            "overdue": 0,
            "services": [{"id": "power-distribution", "healthy": True, "detail": "tcp ok"}],
        },
        {
            "id": "traffic",
            "description": "Traffic signal controllers and the traffic management centre",
            "criticality": "high",
            "essential": False,
            "state": "contained",
            "states": ["contained"],
            "contained": [
                {
                    "incident_id": "inc-tsc-0001",
                    "step_id": "fallback:tsc-0001",
                    "adapter": "modbus",
                    "action": "set",
                    "target": "tsc-0001",
                    "state": "verified",
                    "automatic": True,
                    "since": "2026-12-07T00:16:02+00:00",
                    "lease_expires_at": "2026-12-07T01:16:02+00:00",
                }
            ],
            "awaiting_approval": 0,
            "overdue": 0,
            "services": [],
        },
    ],
    "conduits": [
        {
            "id": "soc-mgmt",
            "description": "SOC jump host: responders keep reaching a contained zone",
            "cidrs": [{"cidr": "198.18.40.5/32", "zone": "municipal-it"}],
        }
    ],
    "enforcement_points": [
        {
            "id": "city-gw",
            "description": "Core gateway routing between the city zones",
            "zones": ["traffic", "energy"],
        }
    ],
    "approvals": {
        "pending": 1,
        "overdue": 0,
        "waiting": [
            {
                "incident_id": "inc-rtu-e01",
                "step_id": "fallback:rtu-e01",
                "zone": "energy",
                "target": "rtu-e01",
                "approval_deadline": "2026-12-07T00:48:00+00:00",
                "overdue": False,
                "overdue_since": None,
            }
        ],
    },
    "recent": [
        {
            "incident_id": "inc-tsc-0009",
            "status": "released",
            "entity": "tsc-0009",
            "zones": ["traffic"],
            "severity_id": 4,
        }
    ],
    "unavailable": [],
    "truncated": False,
}
SVG_EXAMPLE = (
    '<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="map-title map-desc" '
    'width="1000" height="420" viewBox="0 0 1000 420"><title id="map-title">Lab City: the '
    'city right now</title><desc id="map-desc">Lab City, 2026-12-07 00:18 UTC. Automation '
    "running. 1 of 10 automatic containments in force. Zones: zone energy: awaiting "
    "approval.</desc>…</svg>"
)
UNAVAILABLE = problem_doc(
    503,
    "Temporal answered neither the city record nor the incident list",
    "the city cannot be read: city record (automation, budget): connection refused; "
    "incident list (containments, approvals): cannot list incidents: connection refused",
    slug="temporal-unavailable",
)


async def _picture(context: ApiContext) -> CityPicture:
    try:
        picture = await context.city_reads.get(lambda: gather(context))
    except CityUnavailable as exc:
        raise temporal_unavailable("the city cannot be read: " + "; ".join(exc.what)) from None
    return picture


@router.get(
    "/v1/city",
    openapi_extra={"security": BEARER},
    response_model=CityPicture,
    responses={
        200: {"content": {"application/json": {"example": EXAMPLE}}},
        503: UNAVAILABLE,
    },
)
async def city(_reader: Reader, context: Annotated[ApiContext, Depends(get_context)]) -> Response:
    """The city right now: automation, the blast-radius budget, each zone's state (worst
    of unhealthy, awaiting approval, contained, normal) with what is contained in it,
    conduits kept open, approvals pending and overdue, recently escalated and released
    incidents. Times are UTC."""
    picture = await _picture(context)
    return Response(picture.model_dump_json(), media_type="application/json", headers=NO_STORE)


@router.get(
    "/v1/city/map.svg",
    openapi_extra={"security": BEARER},
    response_class=Response,
    responses={
        200: {
            "description": "the map: zones coloured and labelled by state, conduits, budget",
            "content": {SVG: {"schema": {"type": "string"}, "example": SVG_EXAMPLE}},
        },
        503: UNAVAILABLE,
    },
)
async def city_map(
    _reader: Reader, context: Annotated[ApiContext, Depends(get_context)]
) -> Response:
    """The same picture as an SVG map (`role="img"`, with a title and a description);
    no script, no external reference."""
    picture = await _picture(context)
    return Response(draw.render(picture), media_type=SVG, headers=NO_STORE)
