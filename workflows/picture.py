"""What a finding adds to the picture of an incident; only a change calls for a decision.

The picture is remembered as keys. Severity keys stay readable (they are compared); the
others are kept by digest once an incident is bounded (contracts/compact.short_key), and
a key is looked up in both forms, so a picture carried from an older run still matches.
"""

from __future__ import annotations

from collections.abc import Collection

from contracts.compact import short_key
from contracts.findings import Finding

MAX_PICTURE = 5000  # keys remembered per incident; the oldest are forgotten first


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


def stored_key(key: str) -> str:
    return key if key.startswith(("severity>=", "h:")) else short_key(key)


def new_keys(known: Collection[str], finding: Finding) -> set[str]:
    """The finding's keys the picture does not hold, in either form."""
    return {k for k in picture_keys(finding) if k not in known and stored_key(k) not in known}


def changes_picture(known: Collection[str], finding: Finding) -> bool:
    """A higher severity, a new asset, zone, endpoint or user is news; a repeat is not."""
    new = new_keys(known, finding)
    severities = [int(k.split(">=")[1]) for k in known if k.startswith("severity>=")]
    highest = max(severities, default=-1)
    return any(not key.startswith("severity>=") or int(key.split(">=")[1]) > highest for key in new)
