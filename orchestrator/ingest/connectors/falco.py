"""`falco` source: Falcosidekick's webhook output (the Falco event as Falco emits it).

Falcosidekick posts one event per request: `uuid` (its own, unique), `rule`, `priority`
(syslog names), `output` (the rendered message), `time`, `hostname` (the node Falco runs
on), `source` (syscall, k8s_audit, ...), `tags` and `output_fields`, Falco's fields by
their dotted names (`user.name`, `fd.cip`, `k8s.pod.name`, ...). The dedupe key is `uuid`;
an event without one (older Falcosidekick) is keyed by its content.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contracts.findings import Analytic, Finding, FindingInfo, Metadata, Product, Resource
from orchestrator.ingest.connectors import fields as f
from orchestrator.ingest.connectors.base import Item, Reject, VendorConnector, convert, raw_json
from orchestrator.ingest.connectors.severity import FALCO


class FalcoEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    uuid: str | None = None
    rule: str = Field(min_length=1)
    priority: str
    output: str | None = None
    time: f.Time | None = None
    hostname: str | None = None
    source: str | None = None
    tags: list[str] = Field(default_factory=list)
    output_fields: dict[str, Any] = Field(default_factory=dict)


class FalcoConnector(VendorConnector):
    source = "falco"
    title = "Falcosidekick webhook output"
    ndjson = False

    def items(self, payload: Any, received_at_ms: int) -> list[Item]:
        return [convert(FalcoEvent, payload, (), lambda e: _finding(e, payload, received_at_ms))]


def _finding(event: FalcoEvent, payload: Any, received_at_ms: int) -> Finding:
    if not FALCO.knows(event.priority):
        raise Reject("priority", detail=f"unknown Falco priority {event.priority[:32]!r}")
    fields = event.output_fields
    moment = event.time
    if moment is None:  # evt.time is in nanoseconds
        moment = f.lenient_time(fields.get("evt.time"), received_at_ms, 1_000_000_000)
    # fd.cip/fd.sip are the client and server of the connection the rule saw.
    client = f.endpoint(ip=fields.get("fd.cip"), port=fields.get("fd.cport"))
    server = f.endpoint(ip=fields.get("fd.sip"), port=fields.get("fd.sport"))
    who = f.user(fields.get("user.name") or fields.get("ka.user.name"), fields.get("user.uid"))
    node = event.hostname
    key = event.uuid or f.digest([event.time, event.rule, node, event.output])
    return Finding(
        finding_info=FindingInfo(
            uid=f.uid("falco", key),
            title=f.clip(event.rule, f.MAX_TITLE),
            desc=f.clip(event.output) if event.output else None,
            analytic=Analytic(
                uid=f.clip(event.rule, f.MAX_UID), name=f.clip(event.rule), type_id=1
            ),
        ),
        severity_id=FALCO(event.priority),
        time=moment,
        # The node Falco watches is the affected host (its containers run there).
        resources=[Resource(uid=f.clip(node, f.MAX_UID), name=node, type="host")] if node else [],
        evidences=f.evidence(client, server, who) + f.evidence(dst=f.endpoint(hostname=node)),
        metadata=Metadata(product=Product(name="Falco", vendor_name="Falco (CNCF)")),
        raw_data=raw_json(payload),
    )
