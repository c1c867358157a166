"""Incident keys: findings about one entity land in one incident workflow."""

from __future__ import annotations

import hashlib
import re

from contracts.findings import Finding

_UNSAFE = re.compile(r"[^a-z0-9._-]+")
MAX_SLUG = 80
HASH_CHARS = 16


def entity_of(finding: Finding) -> str:
    """The primary entity: the first resource, else an endpoint, else a user, else itself.

    Endpoints are searched across every evidence before users, so findings about one host
    key alike whatever order the SIEM lists its evidence in.
    """
    if finding.resources:
        return finding.resources[0].uid
    for evidence in finding.evidences:
        for endpoint in (evidence.src_endpoint, evidence.dst_endpoint):
            if endpoint is not None and (endpoint.ip or endpoint.hostname):
                return str(endpoint.ip or endpoint.hostname)
    for evidence in finding.evidences:
        if evidence.user is not None and (evidence.user.name or evidence.user.uid):
            return str(evidence.user.name or evidence.user.uid)
    return f"finding:{finding.finding_info.uid}"


def incident_id_for(entity: str) -> str:
    """A readable, workflow-id-safe id, distinct for distinct entities.

    An entity that is already a safe slug is used as is; any other gets `~` and a hash of
    the original. A slug never contains `~`, so the two forms cannot collide.
    """
    slug = _UNSAFE.sub("-", entity.lower()).strip("-")[:MAX_SLUG] or "entity"
    if slug != entity:
        slug = f"{slug}~{hashlib.sha256(entity.encode()).hexdigest()[:HASH_CHARS]}"
    return f"inc-{slug}"
