"""`wazuh` source: Wazuh manager alerts (alerts.json format) from an integration script.

A custom integration (docs/SIEMS.md) posts each alert as the manager wrote it: `rule`
(`level` 0-16, `id`, `description`, `groups`), `agent` (the monitored host), `data`
(decoded fields: `srcip`, `dstip`, `srcuser`, ...; Windows events under
`data.win.eventdata`), `timestamp` and `id`, unique per manager. The dedupe key is the
manager name with that id. Wazuh alerts are events: they are never updated or closed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contracts.findings import Analytic, Finding, FindingInfo, Metadata, Product, Resource
from orchestrator.ingest.connectors import fields as f
from orchestrator.ingest.connectors.base import Item, VendorConnector, convert, raw_json
from orchestrator.ingest.connectors.severity import WAZUH


class Rule(BaseModel):
    model_config = ConfigDict(extra="allow")

    level: int = Field(ge=0, le=16)
    id: str | int | None = None
    description: str = Field(min_length=1)
    groups: list[str] = Field(default_factory=list)


class Agent(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = None
    name: str | None = None
    ip: str | None = None


class Manager(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str | None = None


class WazuhAlert(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    timestamp: f.Time
    rule: Rule
    agent: Agent = Field(default_factory=Agent)
    manager: Manager = Field(default_factory=Manager)
    data: dict[str, Any] = Field(default_factory=dict)
    full_log: str | None = None


class WazuhConnector(VendorConnector):
    source = "wazuh"
    title = "Wazuh alert (custom integration)"
    ndjson = False

    def items(self, payload: Any, received_at_ms: int) -> list[Item]:
        del received_at_ms  # every Wazuh alert has its own timestamp
        return [convert(WazuhAlert, payload, (), lambda a: _finding(a, payload))]


def _finding(alert: WazuhAlert, payload: Any) -> Finding:
    data = alert.data
    win = data.get("win")
    win = win.get("eventdata") if isinstance(win, dict) else None
    win = win if isinstance(win, dict) else {}  # Windows event fields, when there are any
    src = f.endpoint(
        ip=data.get("srcip") or win.get("ipAddress"), port=data.get("srcport") or win.get("ipPort")
    )
    dst = f.endpoint(ip=data.get("dstip"), port=data.get("dstport"))
    who = f.user(
        data.get("srcuser") or data.get("dstuser") or win.get("targetUserName"),
        win.get("targetUserSid"),
    )
    agent = alert.agent
    host = f.endpoint(ip=agent.ip, hostname=agent.name)
    rule = alert.rule
    rule_id = f.scalar(rule.id)
    return Finding(
        finding_info=FindingInfo(
            uid=f.uid("wazuh", alert.manager.name or "manager", alert.id),
            title=f.clip(rule.description, f.MAX_TITLE),
            desc=f.clip(alert.full_log) if alert.full_log else None,
            analytic=Analytic(uid=rule_id, name=f.clip(rule.description), type_id=1)
            if rule_id
            else None,
        ),
        severity_id=WAZUH(rule.level),
        time=alert.timestamp,
        # The agent is the monitored host the alert is about.
        resources=[Resource(uid=f.clip(agent.name, f.MAX_UID), name=agent.name, type="host")]
        if agent.name
        else [],
        evidences=f.evidence(src, dst, who) + f.evidence(dst=host),
        metadata=Metadata(product=Product(name="Wazuh", vendor_name="Wazuh")),
        raw_data=raw_json(payload),
    )
