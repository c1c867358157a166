"""`elastic` source: a Kibana Webhook connector attached to an Elastic Security rule.

The connector body is a Mustache template the operator pastes (docs/SIEMS.md):

    {"context": {"rule": {{{context.rule}}}, "alerts": {{{context.alerts}}}}}

Triple braces render the objects as JSON. `context.alerts` holds the alert documents of
the rule run, ECS fields plus `kibana.alert.*`; Kibana writes some as dotted keys
("kibana.alert.uuid") and some nested ({"host": {"name": ...}}), so fields are read
either way. One finding per alert; the dedupe key is `kibana.alert.uuid`. An alert whose
`kibana.alert.workflow_status` is `closed` (or whose status is `recovered`) closes the
finding; `acknowledged` updates it.
"""

from __future__ import annotations

from typing import Any

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
    Item,
    Reject,
    VendorConnector,
    convert,
    each,
    raw_json,
    validated,
)
from orchestrator.ingest.connectors.severity import ELASTIC, ELASTIC_RISK, first_known


def dig(document: Any, dotted: str) -> Any:
    """`a.b.c` from `{"a.b.c": v}`, `{"a": {"b": {"c": v}}}` or any mix of the two."""
    if not isinstance(document, dict):
        return None
    if dotted in document:
        return document[dotted]
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:cut])
        if isinstance(document.get(head), dict):
            found = dig(document[head], ".".join(parts[cut:]))
            if found is not None:
                return found
    return None


class ElasticRule(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str | None = None
    rule_id: str | None = Field(default=None, alias="ruleId")
    name: str | None = None
    severity: str | None = None
    risk_score: float | None = Field(default=None, alias="riskScore")
    description: str | None = None


class ElasticContext(BaseModel):
    model_config = ConfigDict(extra="allow")

    rule: ElasticRule = Field(default_factory=ElasticRule)
    alerts: list[Any] = Field(min_length=1)


class ElasticPayload(BaseModel):
    model_config = ConfigDict(extra="allow")

    context: ElasticContext


class ElasticAlert(BaseModel):
    """An alert document; only checked to be an object, fields are read with `dig`."""

    model_config = ConfigDict(extra="allow")


_WORKFLOW = {"closed": ActivityId.CLOSE, "acknowledged": ActivityId.UPDATE}


class ElasticConnector(VendorConnector):
    source = "elastic"
    title = "Kibana Webhook connector (Elastic Security rule action)"
    ndjson = False

    def items(self, payload: Any, received_at_ms: int) -> list[Item]:
        envelope = validated(ElasticPayload, payload)
        if isinstance(envelope, Item):
            return [envelope]
        rule = envelope.context.rule
        rule_json = payload["context"].get("rule")

        def one(alert: Any, where: tuple[str | int, ...]) -> Item:
            return convert(
                ElasticAlert,
                alert,
                where,
                lambda _: _finding(rule, rule_json, alert, received_at_ms),
            )

        return each(envelope.context.alerts, ("context", "alerts"), one)


def _text(alert: Any, *names: str) -> str | None:
    for name in names:
        value = f.scalar(dig(alert, name))
        if value is not None:
            return value
    return None


def _finding(
    rule: ElasticRule,
    rule_json: Any,
    alert: dict[str, Any],
    received_at_ms: int,
) -> Finding:
    alert_uid = _text(alert, "kibana.alert.uuid", "_id")
    if alert_uid is None:
        # A rejection, not a skip: without an id the alert cannot be deduplicated.
        raise Reject("kibana.alert.uuid", detail="missing: every alert needs an id to dedupe on")
    title = _text(alert, "kibana.alert.rule.name") or rule.name or "Elastic Security alert"
    rule_uid = _text(alert, "kibana.alert.rule.rule_id") or rule.rule_id or rule.id
    description = _text(alert, "kibana.alert.reason") or rule.description
    status = (_text(alert, "kibana.alert.workflow_status") or "").lower()
    activity = _WORKFLOW.get(status, ActivityId.CREATE)
    if (_text(alert, "kibana.alert.status") or "").lower() in ("recovered", "untracked"):
        activity = ActivityId.CLOSE
    host_name = _text(alert, "host.name", "host.hostname")
    host = f.endpoint(ip=dig(alert, "host.ip"), hostname=host_name)
    src = f.endpoint(
        ip=dig(alert, "source.ip"),
        hostname=dig(alert, "source.domain"),
        port=dig(alert, "source.port"),
    )
    dst = f.endpoint(
        ip=dig(alert, "destination.ip"),
        hostname=dig(alert, "destination.domain"),
        port=dig(alert, "destination.port"),
    )
    who = f.user(_text(alert, "user.name"), _text(alert, "user.id"))
    return Finding(
        activity_id=activity,
        finding_info=FindingInfo(
            uid=f.uid("elastic", alert_uid),
            title=f.clip(title, f.MAX_TITLE),
            desc=f.clip(description) if description else None,
            analytic=Analytic(uid=f.clip(rule_uid, f.MAX_UID), name=f.clip(title), type_id=1)
            if rule_uid
            else None,
        ),
        severity_id=first_known(
            (ELASTIC, dig(alert, "kibana.alert.severity")),
            (ELASTIC, rule.severity),
            (ELASTIC_RISK, dig(alert, "kibana.alert.risk_score")),
            (ELASTIC_RISK, rule.risk_score),
        ),
        time=f.lenient_time(
            dig(alert, "@timestamp") or dig(alert, "kibana.alert.original_time"), received_at_ms
        ),
        resources=[Resource(uid=f.clip(host_name, f.MAX_UID), name=host_name, type="host")]
        if host_name
        else [],
        evidences=f.evidence(src, dst, who) + f.evidence(dst=host),
        metadata=Metadata(product=Product(name="Elastic Security", vendor_name="Elastic")),
        raw_data=raw_json({"rule": rule_json, "alert": alert}),
    )
