"""Read side of incidents: one incident from its workflow's `state` query (through the
responder service, whose errors api/problems.py answers); the list from Temporal
visibility (orchestrator.api.listing)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from contracts.incident import IncidentStatus
from orchestrator.api import examples
from orchestrator.api.access import BEARER, Reader
from orchestrator.api.context import ApiContext, get_context
from orchestrator.api.listing import ZONE_PATTERN, Filters, list_page
from orchestrator.api.problems import Problem
from orchestrator.ingest import raw_store
from orchestrator.responders.service import Responders

router = APIRouter()
MAX_PAGE = 200


@router.get("/v1/incidents/{incident_id}", openapi_extra={"security": BEARER})
async def get_incident(
    incident_id: str, _reader: Reader, context: Annotated[ApiContext, Depends(get_context)]
) -> dict[str, Any]:
    view = await Responders(context).incident(incident_id)
    return view.model_dump(mode="json")


@router.get(
    "/v1/raw/{sha256}",
    openapi_extra={"security": BEARER},
    response_class=Response,
    responses={
        200: {
            "description": "the raw payload, byte for byte as the connector kept it",
            "content": {"application/json": {"example": examples.RAW_PAYLOAD}},
        }
    },
)
async def get_raw_payload(
    sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="`raw_ref.sha256`")],
    _reader: Reader,
    context: Annotated[ApiContext, Depends(get_context)],
) -> Response:
    """A finding's raw SIEM payload, as posted: the incident names it by digest
    (`findings[].raw_ref`, and `raw_sha256` in the audit); the workflow keeps a summary."""
    try:
        body = await raw_store.get(context.raw_store, sha256)
    except raw_store.RawStoreError as exc:
        raise Problem(503, str(exc), slug="raw-store-unavailable") from None
    if body is None:
        raise Problem(404, f"no raw payload with sha256 {sha256}", slug="unknown-payload")
    return Response(
        body,
        media_type="application/json",
        headers={"ETag": f'"{sha256}"', "Cache-Control": "private, max-age=31536000, immutable"},
    )


def incident_filters(
    *,
    status: IncidentStatus | None = None,
    zone: Annotated[str | None, Query(pattern=ZONE_PATTERN)] = None,
    severity: Annotated[int | None, Query(ge=0, le=99, description="at least")] = None,
    awaiting_approval: Annotated[
        bool | None, Query(description="only incidents with a step waiting for a person")
    ] = None,
) -> Filters:
    return Filters(status, zone, severity, awaiting_approval)


@router.get("/v1/incidents", openapi_extra={"security": BEARER})
async def list_incidents(
    _reader: Reader,
    context: Annotated[ApiContext, Depends(get_context)],
    filters: Annotated[Filters, Depends(incident_filters)],
    *,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    page_token: Annotated[str | None, Query(max_length=4096)] = None,
) -> dict[str, Any]:
    """Incidents, running and closed, newest first; the filters run in Temporal's
    visibility query. `next_page_token` (when more match) fetches the next page."""
    rows, token = await list_page(context, filters, limit=limit, page_token=page_token)
    return {"incidents": rows, "next_page_token": token}
