"""A validated OCSF finding, normalized into the `Finding` Bulkhead keeps and decides on.

The incident key (orchestrator/ingest/entity.py) is the first resource, else an endpoint of an
evidence, else a user, so everything OCSF says about *what* and *who* is folded in here:

- resources: `resources[]`, then the affected `device`, then `Resource UID` observables.
  A resource is keyed by its `hostname` when it names one, else `uid`, else `name`, else
  `ip`: it is the asset that gets contained, and CrowdStrike's gateway, for one, puts a
  process id in `uid` and the host in `hostname`.
- zone: `resources[].zone`, else a label `zone=<name>` or `zone:<name>` (AWS renders tags
  as `key=value`, Prowler and Kubernetes as `key:value`).
- evidences: `evidences[]` (src/dst endpoint ip, hostname or name, port; the user from
  `user`, else `actor.user`), the top-level `actor.user`, the IP of each resource or
  device (as the destination: the affected host), then observables of type Hostname (1),
  IP Address (2), User Name (4), Email Address (5), Endpoint (20) and User (21) whose
  value is not named already.

Severity and confidence ids pass straight through; `confidence` (a label) is the fallback.
A Security Finding (2001) whose `state_id` is Suppressed (3) or Resolved (4) closes the
finding it refers to, as activity Close (3) does from OCSF 1.1 on.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from contracts.findings import (
    ActivityId,
    Analytic,
    ConfidenceId,
    Endpoint,
    Evidence,
    Finding,
    FindingInfo,
    Metadata,
    Product,
    Resource,
    SeverityId,
    User,
)
from orchestrator.ingest.connectors import fields as f
from orchestrator.ingest.connectors import ocsf_models as m
from orchestrator.ingest.connectors import ocsf_schema as schema
from orchestrator.ingest.connectors.severity import confidence as confidence_label

T = TypeVar("T")

MAX_RESOURCES = 256  # Finding.resources
SECONDS_BELOW = 100_000_000_000  # a `time` below this is in seconds, not milliseconds
_ZONE_LABEL = re.compile(r"^\s*zone\s*[=:]\s*(\S.*?)\s*$", re.IGNORECASE)
_HOST_OBSERVABLES = {schema.OBSERVABLE_HOSTNAME, schema.OBSERVABLE_IP, schema.OBSERVABLE_ENDPOINT}
_USER_OBSERVABLES = {schema.OBSERVABLE_USER_NAME, schema.OBSERVABLE_EMAIL, schema.OBSERVABLE_USER}


def to_finding(ocsf: m.OcsfFinding, raw_data: str) -> Finding:
    info = ocsf.info
    activity = ActivityId(ocsf.activity_id)
    if ocsf.closes:
        activity = ActivityId.CLOSE
    return Finding(
        activity_id=activity,
        finding_info=FindingInfo(
            uid=bounded_uid(info.uid),
            title=title_of(ocsf),
            desc=f.clip(desc) if (desc := _text(info.desc)) else None,
            analytic=_analytic(info.analytic if info.analytic is not None else _top_analytic(ocsf)),
        ),
        severity_id=SeverityId(ocsf.severity_id),
        confidence_id=_confidence(ocsf),
        time=event_time_ms(ocsf.time),
        resources=_resources(ocsf),
        evidences=_evidences(ocsf)[: f.MAX_EVIDENCES],
        metadata=Metadata(product=_product(ocsf.metadata.product), version=ocsf.metadata.version),
        raw_data=raw_data,
    )


def bounded_uid(uid: str) -> str:
    """The uid as sent, or its digest when longer than Bulkhead keeps (a stable key still)."""
    uid = uid.strip()
    return uid if len(uid) <= f.MAX_UID else f"sha256:{hashlib.sha256(uid.encode()).hexdigest()}"


def title_of(ocsf: m.OcsfFinding) -> str:
    """`title`, else the message, the first finding type, the analytic's name, the class."""
    info = ocsf.info
    types = info.types if isinstance(info.types, list) else []
    analytic = info.analytic if isinstance(info.analytic, dict) else {}
    for candidate in (info.title, ocsf.message, *types[:1], analytic.get("name")):
        if text := _text(candidate):
            return f.clip(text, f.MAX_TITLE)
    class_name = _text(ocsf.class_name) or schema.ACCEPTED_CLASSES[ocsf.CLASS_UID]
    return f.clip(f"{class_name} {info.uid.strip()}", f.MAX_TITLE)


def event_time_ms(time: int) -> int:
    """OCSF `time` is epoch milliseconds. Some producers write seconds (Prowler; Datadog's
    Okta mapping): a value below 10^11, before 3 March 1973 as milliseconds, is one of
    those, since no finding is that old, and is read as seconds."""
    return time * 1000 if 0 < time < SECONDS_BELOW else time


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _top_analytic(ocsf: m.OcsfFinding) -> Any:
    return ocsf.analytic if isinstance(ocsf, m.SecurityFinding) else None


def _analytic(value: Any) -> Analytic | None:
    if not isinstance(value, dict):
        return None
    uid, name = _text(value.get("uid")), _text(value.get("name"))
    type_id = value.get("type_id")
    if uid is None and name is None:
        return None
    return Analytic(
        uid=f.clip(uid, f.MAX_UID) if uid else None,
        name=f.clip(name) if name else None,
        type_id=type_id if type(type_id) is int else None,
    )


def _confidence(ocsf: m.OcsfFinding) -> ConfidenceId:
    if ocsf.confidence_id is not None:
        return ConfidenceId(ocsf.confidence_id)
    if isinstance(ocsf.confidence, str):
        return confidence_label(ocsf.confidence)
    return ConfidenceId.UNKNOWN


def _product(product: m.Product) -> Product:
    name = _text(product.name) or _text(product.uid) or ""  # the model ensures one of them
    vendor = _text(product.vendor_name)
    return Product(name=f.clip(name), vendor_name=f.clip(vendor) if vendor else None)


# --- resources -----------------------------------------------------------------------------


def _zone(resource: m.Resource) -> str | None:
    if zone := _text(resource.zone):
        return f.clip(zone, f.MAX_UID)
    labels = resource.labels if isinstance(resource.labels, list) else []
    for label in labels:
        match = _ZONE_LABEL.match(label) if isinstance(label, str) else None
        if match:
            return f.clip(match.group(1), f.MAX_UID)
    return None


def _resources(ocsf: m.OcsfFinding) -> list[Resource]:
    found: list[Resource] = []
    for resource in ocsf.resources or []:
        key = _first(resource.hostname, resource.uid, resource.name, resource.ip)
        if key is not None:
            name = _text(resource.name)
            found.append(
                Resource(
                    uid=bounded_uid(key),
                    name=f.clip(name) if name else None,
                    type=f.clip(kind) if (kind := _text(resource.type)) else None,
                    zone=_zone(resource),
                )
            )
    device = ocsf.device
    if device is not None and (key := _first(device.hostname, device.name, device.uid, device.ip)):
        name, kind = _text(device.name), _text(device.type)
        found.append(
            Resource(
                uid=bounded_uid(key),
                name=f.clip(name) if name else None,
                type=f.clip(kind) if kind else None,
            )
        )
    for observable in ocsf.observables or []:
        value = _text(observable.value)
        if observable.type_id == schema.OBSERVABLE_RESOURCE_UID and value:
            found.append(Resource(uid=bounded_uid(value)))
    return _unique(found, lambda r: r.uid)[:MAX_RESOURCES]


def _first(*candidates: str | None) -> str | None:
    for candidate in candidates:
        if text := _text(candidate):
            return text
    return None


# --- evidences -----------------------------------------------------------------------------


def _endpoint(endpoint: m.Endpoint | None) -> Endpoint | None:
    if endpoint is None:
        return None
    return f.endpoint(
        ip=endpoint.ip, hostname=endpoint.hostname or endpoint.name, port=endpoint.port
    )


def _user(user: m.User | None) -> User | None:
    if user is None:
        return None
    email = _text(user.email_addr)
    return f.user(name=_text(user.name) or email, uid_=_text(user.uid))


def _evidences(ocsf: m.OcsfFinding) -> list[Evidence]:
    found: list[Evidence] = []
    evidences = ocsf.evidences if isinstance(ocsf, m.DetectionFinding) else None
    for evidence in evidences or []:
        user = _user(evidence.user)
        actor = _user(evidence.actor.user) if evidence.actor is not None else None
        src, dst = _endpoint(evidence.src_endpoint), _endpoint(evidence.dst_endpoint)
        found += f.evidence(src, dst, user or actor)
        if user is not None and actor is not None and actor != user:
            found += f.evidence(who=actor)  # who acted, besides whom it concerns
    if ocsf.actor is not None:
        found += f.evidence(who=_user(ocsf.actor.user))
    # An affected host's address: the inventory finds assets by the IPs of evidences.
    hosts: list[m.Resource | m.Device] = [*(ocsf.resources or [])]
    if ocsf.device is not None:
        hosts.append(ocsf.device)
    for host in hosts:
        if _text(host.ip):
            found += f.evidence(dst=f.endpoint(ip=host.ip, hostname=host.hostname))
    return found + _observed(ocsf.observables or [], found)


def _observed(observables: list[m.Observable], known: list[Evidence]) -> list[Evidence]:
    """Observables of hosts and users that no evidence names yet, one evidence each."""
    hosts = {
        value
        for e in known
        for side in (e.src_endpoint, e.dst_endpoint)
        if side is not None
        for value in (side.ip, side.hostname)
        if value
    }
    users = {v for e in known if e.user is not None for v in (e.user.name, e.user.uid) if v}
    found: list[Evidence] = []
    for observable in observables:
        value = _text(observable.value)
        if value is None:
            continue
        if observable.type_id in _USER_OBSERVABLES and value not in users:
            users.add(value)
            found += f.evidence(who=f.user(name=value))
        elif observable.type_id in _HOST_OBSERVABLES and value not in hosts:
            hosts.add(value)
            # Observables carry no direction; their name is a path such as
            # "evidences[].dst_endpoint.ip", which tells it when present.
            towards = isinstance(observable.name, str) and "dst" in observable.name
            endpoint = f.endpoint(value)
            found += f.evidence(dst=endpoint) if towards else f.evidence(src=endpoint)
    return found


def _unique(items: list[T], key: Callable[[T], Hashable]) -> list[T]:
    seen: set[Hashable] = set()
    kept: list[T] = []
    for item in items:
        if key(item) not in seen:
            seen.add(key(item))
            kept.append(item)
    return kept
