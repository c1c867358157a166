"""`alertmanager` source: Prometheus Alertmanager's webhook receiver (payload version 4).

One notification carries a group of `alerts[]`, each with its own `status` (firing or
resolved), `labels`, `annotations`, `startsAt`/`endsAt` and `fingerprint` (a hash of the
label set). The dedupe key is fingerprint plus `startsAt`: the same alert repeated by
`repeat_interval` is one finding, its resolution closes that finding, and the same label
set firing again later is a new one. Hosts come from the `instance` label
(`host:port`) or `ip`/`hostname` labels; a Bulkhead inventory id in an `asset` label
names the resource directly.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.findings import (
    ActivityId,
    Analytic,
    Finding,
    FindingInfo,
    Metadata,
    Product,
    Resource,
)
from orchestrator.ingest.connectors import fields as f
from orchestrator.ingest.connectors.base import (
    MAX_ITEMS,
    Item,
    VendorConnector,
    convert,
    each,
    raw_json,
    validated,
)
from orchestrator.ingest.connectors.severity import ALERTMANAGER

# Alertmanager writes the zero time for an alert that has not ended.
_ZERO_TIME = "0001-01-01T00:00:00Z"


class Alert(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(min_length=1)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: f.Time  # noqa: N815 - Alertmanager's field name
    endsAt: str | None = None  # noqa: N815
    generatorURL: str | None = None  # noqa: N815
    fingerprint: str | None = None


class Notification(BaseModel):
    model_config = ConfigDict(extra="allow")

    version: Literal["4"] = "4"
    status: str | None = None
    receiver: str | None = None
    groupKey: str | None = None  # noqa: N815
    alerts: list[Any] = Field(min_length=1, max_length=MAX_ITEMS)


class AlertmanagerConnector(VendorConnector):
    source = "alertmanager"
    title = "Prometheus Alertmanager webhook receiver (version 4)"
    ndjson = False

    def items(self, payload: Any, received_at_ms: int) -> list[Item]:
        notification = validated(Notification, payload)
        if isinstance(notification, Item):
            return [notification]

        def one(alert: Any, where: tuple[str | int, ...]) -> Item:
            return convert(Alert, alert, where, lambda a: _finding(a, alert, received_at_ms))

        return each(notification.alerts, ("alerts",), one)


def _ended_ms(alert: Alert, fallback: int) -> int:
    if not alert.endsAt or alert.endsAt == _ZERO_TIME:
        return fallback
    return f.lenient_time(alert.endsAt, fallback)


def _finding(alert: Alert, document: Any, received_at_ms: int) -> Finding:
    labels, notes = alert.labels, alert.annotations
    name = labels.get("alertname") or "alert"
    # Alertmanager's fingerprint is a hash of the label set; older releases omit it.
    fingerprint = alert.fingerprint or f.digest(labels)
    resolved = alert.status == "resolved"
    host, port = f.split_host_port(labels["instance"]) if labels.get("instance") else (None, None)
    target = f.endpoint(
        host,
        ip=labels.get("ip"),
        hostname=labels.get("hostname") or labels.get("host") or labels.get("node"),
        port=port,
    )
    asset = labels.get("asset")
    return Finding(
        activity_id=ActivityId.CLOSE if resolved else ActivityId.CREATE,
        finding_info=FindingInfo(
            uid=f.uid("alertmanager", fingerprint, alert.startsAt),
            title=f.clip(notes.get("summary") or name, f.MAX_TITLE),
            desc=f.clip(notes["description"]) if notes.get("description") else None,
            analytic=Analytic(uid=f.clip(name, f.MAX_UID), name=f.clip(name), type_id=1),
        ),
        severity_id=ALERTMANAGER(labels.get("severity")),
        time=_ended_ms(alert, received_at_ms) if resolved else alert.startsAt,
        resources=[Resource(uid=f.clip(asset, f.MAX_UID), zone=labels.get("zone"))]
        if asset
        else [],
        evidences=f.evidence(
            src=f.endpoint(ip=labels.get("src_ip")),
            dst=target,
            who=f.user(labels.get("user") or labels.get("username")),
        ),
        metadata=Metadata(product=Product(name="Alertmanager", vendor_name="Prometheus")),
        raw_data=raw_json(document),
    )
