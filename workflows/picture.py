"""What a finding adds to the picture of an incident; only a change calls for a decision."""

from __future__ import annotations

from workflows.model import Finding


def picture_keys(finding: Finding) -> set[str]:
    """Severity level, assets, zones and endpoints a finding speaks of."""
    keys = {f"severity>={int(finding.severity_id)}"}
    keys.update(f"asset:{r.uid}" for r in finding.resources)
    keys.update(f"zone:{r.zone}" for r in finding.resources if r.zone)
    for evidence in finding.evidences:
        for endpoint in (evidence.src_endpoint, evidence.dst_endpoint):
            if endpoint is not None and endpoint.ip:
                keys.add(f"ip:{endpoint.ip}")
        if evidence.user is not None and evidence.user.name:
            keys.add(f"user:{evidence.user.name}")
    return keys


def changes_picture(known: set[str], finding: Finding) -> bool:
    """A higher severity, a new asset, zone, endpoint or user is news; a repeat is not."""
    new = picture_keys(finding) - known
    severities = [int(k.split(">=")[1]) for k in known if k.startswith("severity>=")]
    highest = max(severities, default=-1)
    return any(not key.startswith("severity>=") or int(key.split(">=")[1]) > highest for key in new)
