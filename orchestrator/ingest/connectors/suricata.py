"""`suricata` source: EVE JSON alert records, posted by a log forwarder.

Suricata writes EVE records to a file; a forwarder (Vector, Fluent Bit, Logstash) posts
them as one object, a JSON array, or an NDJSON batch (one record per line). Records
other than `event_type: alert` (flow, dns, stats, ...) are skipped, not rejected: a
forwarder tailing eve.json sends everything. The dedupe key is sensor, flow and
signature: Suricata alerts once per packet, and every alert of one signature on one flow
is one finding.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.findings import Analytic, Finding, FindingInfo, Metadata, Product
from orchestrator.ingest.connectors import fields as f
from orchestrator.ingest.connectors.base import (
    MAX_ITEMS,
    Item,
    VendorConnector,
    convert,
    each,
    pointer,
    raw_json,
    rejected,
)
from orchestrator.ingest.connectors.severity import (
    SURICATA_METADATA,
    SURICATA_PRIORITY,
    confidence,
    first_known,
)


class Alert(BaseModel):
    model_config = ConfigDict(extra="allow")

    signature_id: int
    signature: str = Field(min_length=1)
    gid: int = 1
    rev: int | None = None
    category: str | None = None
    severity: int | None = None
    action: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class EveAlert(BaseModel):
    model_config = ConfigDict(extra="allow")

    timestamp: f.Time
    event_type: Literal["alert"]
    src_ip: str | None = None
    src_port: int | None = None
    dest_ip: str | None = None
    dest_port: int | None = None
    proto: str | None = None
    flow_id: int | None = None
    host: str | None = None  # the sensor, when the forwarder or Suricata names it
    alert: Alert


class SuricataConnector(VendorConnector):
    source = "suricata"
    title = "Suricata EVE JSON alerts (via a log forwarder)"
    ndjson = True

    def items(self, payload: Any, received_at_ms: int) -> list[Item]:
        del received_at_ms  # every EVE record has its own timestamp
        if isinstance(payload, list):
            if not payload:
                return [rejected((), "expected at least one EVE record")]
            if len(payload) > MAX_ITEMS:
                return [rejected((), f"at most {MAX_ITEMS} records per payload")]
            return each(payload, (), _record)
        return [_record(payload, ())]


def _record(document: Any, where: tuple[str | int, ...]) -> Item:
    kind = document.get("event_type") if isinstance(document, dict) else None
    if isinstance(kind, str) and kind != "alert":
        return Item(pointer(*where), ignored=f"event_type {kind[:64]!r} is not an alert")
    return convert(EveAlert, document, where, lambda a: _finding(a, document))


def _finding(record: EveAlert, document: Any) -> Finding:
    alert = record.alert
    meta = alert.metadata
    if record.flow_id is not None:
        key = f.uid(
            "suricata", record.host or "sensor", record.flow_id, alert.gid, alert.signature_id
        )
    else:  # no flow (a decoder event): the record itself is the finding
        key = f.uid("suricata", record.host or "sensor", f.digest(document))
    return Finding(
        finding_info=FindingInfo(
            uid=key,
            title=f.clip(alert.signature, f.MAX_TITLE),
            desc=f.clip(alert.category) if alert.category else None,
            analytic=Analytic(
                uid=f"{alert.gid}:{alert.signature_id}" + (f":{alert.rev}" if alert.rev else ""),
                name=f.clip(alert.signature),
                type_id=1,
            ),
        ),
        severity_id=first_known(
            (SURICATA_METADATA, meta.get("signature_severity")),
            (SURICATA_PRIORITY, alert.severity),
        ),
        confidence_id=confidence(meta.get("confidence")),
        time=record.timestamp,
        evidences=f.evidence(
            f.endpoint(ip=record.src_ip, port=record.src_port),
            f.endpoint(ip=record.dest_ip, port=record.dest_port),
        ),
        metadata=Metadata(product=Product(name="Suricata", vendor_name="OISF")),
        raw_data=raw_json(document),
    )
