"""`splunk` source: the built-in webhook alert action.

Splunk posts a fixed body: `sid` (the search job), `search_name`, `app`, `owner`,
`results_link` and `result`, the first row of the results (every value a string, a
multivalue field a list). It cannot add headers, so this source authenticates with a
URL token. With the "for each result" trigger Splunk posts once per row under one `sid`,
so the dedupe key is the notable's `event_id` (Enterprise Security) when the row has
one, else `sid` plus a digest of the row. Field names are Splunk's CIM names.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contracts.findings import Analytic, Finding, FindingInfo, Metadata, Product
from orchestrator.ingest.connectors import fields as f
from orchestrator.ingest.connectors.base import Item, VendorConnector, convert, raw_json
from orchestrator.ingest.connectors.severity import SPLUNK, first_known


class SplunkAlert(BaseModel):
    model_config = ConfigDict(extra="allow")

    sid: str = Field(min_length=1)
    search_name: str | None = None
    app: str | None = None
    owner: str | None = None
    results_link: str | None = None
    result: dict[str, Any] | None = None


def _first(row: dict[str, Any], *names: str) -> str | None:
    for name in names:
        value = f.scalar(row.get(name))
        if value is not None:
            return value
    return None


class SplunkConnector(VendorConnector):
    source = "splunk"
    title = "Splunk webhook alert action"
    ndjson = False

    def items(self, payload: Any, received_at_ms: int) -> list[Item]:
        return [convert(SplunkAlert, payload, (), lambda a: _finding(a, payload, received_at_ms))]


def _finding(alert: SplunkAlert, payload: Any, received_at_ms: int) -> Finding:
    row = alert.result or {}
    event_id = _first(row, "event_id")
    key = f.uid("splunk", event_id) if event_id else f.uid("splunk", alert.sid, f.digest(row))
    name = alert.search_name or _first(row, "search_name")
    title = _first(row, "rule_title", "rule_name") or name or f"Splunk alert {alert.sid}"
    description = _first(row, "description", "rule_description")
    src = f.endpoint(
        ip=_first(row, "src_ip"),
        hostname=_first(row, "src_host", "src_nt_host"),
        host=_first(row, "src"),
        port=row.get("src_port"),
    )
    # `host` is the machine the event came from: the affected host when `dest` is absent.
    dst = f.endpoint(
        ip=_first(row, "dest_ip"),
        hostname=_first(row, "dest_host", "dest_nt_host"),
        host=_first(row, "dest", "host"),
        port=row.get("dest_port"),
    )
    who = f.user(_first(row, "user", "src_user", "dest_user"), _first(row, "user_id"))
    return Finding(
        finding_info=FindingInfo(
            uid=key,
            title=f.clip(title, f.MAX_TITLE),
            desc=f.clip(description) if description else None,
            analytic=Analytic(uid=f.clip(name, f.MAX_UID), name=f.clip(name), type_id=1)
            if name
            else None,
        ),
        severity_id=first_known((SPLUNK, row.get("urgency")), (SPLUNK, row.get("severity"))),
        time=f.lenient_time(row.get("_time"), received_at_ms),
        evidences=f.evidence(src, dst, who),
        metadata=Metadata(product=Product(name="Splunk", vendor_name="Splunk")),
        raw_data=raw_json(payload),
    )
