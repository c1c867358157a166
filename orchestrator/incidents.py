"""Incident keys: findings about one entity land in one incident workflow."""

from __future__ import annotations

import hashlib
import re

from workflows.model import Finding

_UNSAFE = re.compile(r"[^a-z0-9._-]+")
MAX_SLUG = 80


def entity_of(finding: Finding) -> str:
    """The primary entity: the first resource, else an endpoint, else a user, else itself."""
    if finding.resources:
        return finding.resources[0].uid
    for evidence in finding.evidences:
        for endpoint in (evidence.src_endpoint, evidence.dst_endpoint):
            if endpoint is not None and (endpoint.ip or endpoint.hostname):
                return str(endpoint.ip or endpoint.hostname)
        if evidence.user is not None and (evidence.user.name or evidence.user.uid):
            return str(evidence.user.name or evidence.user.uid)
    return f"finding:{finding.finding_info.uid}"


def incident_id_for(entity: str) -> str:
    """A readable, workflow-id-safe id; a hash suffix keeps distinct entities distinct."""
    slug = _UNSAFE.sub("-", entity.lower()).strip("-")[:MAX_SLUG] or "entity"
    if slug != entity:
        slug = f"{slug}-{hashlib.sha256(entity.encode()).hexdigest()[:8]}"
    return f"inc-{slug}"
