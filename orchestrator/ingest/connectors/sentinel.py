"""`sentinel` source: a Logic App playbook posting its Microsoft Sentinel incident trigger.

The playbook ("When a Microsoft Sentinel incident is created/updated" -> HTTP action)
posts the trigger body as is: `objectEventType` (Create, Update), `objectSchemaType`
(Incident) and `object`, the incident resource, whose `properties` carry `title`,
`severity`, `status` and `relatedEntities` (Account, Host, Ip, ...). The dedupe key is
the incident's name (its GUID), so an update or a closure lands on the same finding.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contracts.findings import (
    ActivityId,
    Analytic,
    Evidence,
    Finding,
    FindingInfo,
    Metadata,
    Product,
    Resource,
)
from orchestrator.ingest.connectors import fields as f
from orchestrator.ingest.connectors.base import Item, Reject, VendorConnector, convert, raw_json
from orchestrator.ingest.connectors.severity import SENTINEL


class Entity(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class IncidentProperties(BaseModel):
    model_config = ConfigDict(extra="allow")

    title: str = Field(min_length=1)
    description: str | None = None
    severity: str | None = None
    status: str | None = None
    incidentNumber: int | None = None  # noqa: N815 - Sentinel's field name
    createdTimeUtc: f.Time | None = None  # noqa: N815
    lastModifiedTimeUtc: f.Time | None = None  # noqa: N815
    firstActivityTimeUtc: f.Time | None = None  # noqa: N815
    relatedAnalyticRuleIds: list[str] = Field(default_factory=list)  # noqa: N815
    relatedEntities: list[Entity] = Field(default_factory=list)  # noqa: N815
    alerts: list[Any] = Field(default_factory=list)


class Incident(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = None
    name: str | None = None
    properties: IncidentProperties


class SentinelTrigger(BaseModel):
    model_config = ConfigDict(extra="allow")

    objectSchemaType: str | None = None  # noqa: N815
    objectEventType: str | None = None  # noqa: N815
    object: Incident


class SentinelConnector(VendorConnector):
    source = "sentinel"
    title = "Microsoft Sentinel incident trigger (Logic App playbook)"
    ndjson = False

    def items(self, payload: Any, received_at_ms: int) -> list[Item]:
        return [
            convert(SentinelTrigger, payload, (), lambda t: _finding(t, payload, received_at_ms))
        ]


def _finding(trigger: SentinelTrigger, payload: Any, received_at_ms: int) -> Finding | str:
    if trigger.objectSchemaType and trigger.objectSchemaType.lower() != "incident":
        return f"objectSchemaType {trigger.objectSchemaType!r} is not an incident"
    incident = trigger.object
    props = incident.properties
    name = incident.name or (incident.id or "").rstrip("/").rpartition("/")[2]
    if not name:
        raise Reject("object", "name", detail="missing: the incident GUID is the dedupe key")
    activity = ActivityId.CREATE
    if (trigger.objectEventType or "").lower() == "update":
        activity = ActivityId.UPDATE
    if (props.status or "").lower() == "closed":
        activity = ActivityId.CLOSE
    if activity is ActivityId.CREATE:
        moment = props.createdTimeUtc or props.firstActivityTimeUtc
    else:
        moment = props.lastModifiedTimeUtc or props.createdTimeUtc
    rule_ids = props.relatedAnalyticRuleIds
    rule = rule_ids[0].rstrip("/").rpartition("/")[2] or None if rule_ids else None
    resources, evidences = _entities(props.relatedEntities)
    return Finding(
        activity_id=activity,
        finding_info=FindingInfo(
            uid=f.uid("sentinel", name),
            title=f.clip(props.title, f.MAX_TITLE),
            desc=f.clip(props.description) if props.description else None,
            analytic=Analytic(uid=f.clip(rule, f.MAX_UID), name=_alert_name(props), type_id=1)
            if rule
            else None,
        ),
        severity_id=SENTINEL(props.severity),
        time=moment if moment is not None else received_at_ms,
        resources=resources,
        evidences=evidences,
        metadata=Metadata(product=Product(name="Microsoft Sentinel", vendor_name="Microsoft")),
        raw_data=raw_json(payload),
    )


def _alert_name(props: IncidentProperties) -> str | None:
    """The analytics rule's display name, from the first alert when the trigger has it."""
    for alert in props.alerts[:1]:
        if isinstance(alert, dict) and isinstance(alert.get("properties"), dict):
            name = f.scalar(alert["properties"].get("alertDisplayName"))
            return f.clip(name) if name else None
    return None


def _entities(entities: list[Entity]) -> tuple[list[Resource], list[Evidence]]:
    """Hosts are the affected resources; accounts are users; IPs are peers.

    Sentinel does not say which way an Ip entity faced; most are the remote side of a
    sign-in or connection, so they are recorded as source endpoints.
    """
    resources: list[Resource] = []
    evidences: list[Evidence] = []
    for entity in entities:
        kind, props = (entity.kind or "").lower(), entity.properties
        if kind == "host":
            host = f.scalar(props.get("hostName")) or f.scalar(props.get("friendlyName"))
            if host and len(resources) < f.MAX_EVIDENCES:
                resources.append(Resource(uid=f.clip(host, f.MAX_UID), name=host, type="host"))
                evidences += f.evidence(dst=f.endpoint(hostname=host))
        elif kind == "ip":
            evidences += f.evidence(src=f.endpoint(ip=props.get("address")))
        elif kind == "account":
            evidences += f.evidence(
                who=f.user(
                    props.get("accountName") or props.get("friendlyName"),
                    props.get("aadUserId") or props.get("sid"),
                )
            )
    return resources, evidences[: f.MAX_EVIDENCES]
