"""Responder authorizations only the API can make (#16 item 3).

The workflow used to trust whatever principal an approve/deny/extend/release Update
named: a client that reached Temporal directly approved as `ghost-a` and `ghost-b`. Now
the API, once the approval policy allowed an action, MACs a grant over exactly what was
allowed (incident, step, action, principal id, policy decision id, expiry) with the
approval key, which the API and the workers share and Temporal never sees. The workflow
has the grant checked by a local activity on a worker before it changes anything, and
refuses (and audits) a missing, forged, expired, mismatched or reused one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio import activity

from contracts.incident import Grant, GrantCheck, GrantVerdict
from contracts.names import Activity
from orchestrator import keys
from orchestrator.config import Settings

APPROVAL_KEY_FILE = "approval-key"
WHAT = "approval key"
VALIDITY = timedelta(minutes=5)  # a grant is used at once; this bounds a stolen one


def approval_key_path(settings: Settings) -> Path:
    return settings.state_dir / APPROVAL_KEY_FILE


def approval_key(settings: Settings, *, create: bool = True) -> bytes:
    """The key from `approval_key`, else `<state_dir>/approval-key` (made when missing)."""
    key = keys.shared_key(
        settings.approval_key,
        "approval_key",
        approval_key_path(settings),
        what=WHAT,
        create=create,
    )
    if key is None:
        raise keys.SharedKeyError(f"no {WHAT}: set approval_key (BULKHEAD_APPROVAL_KEY)")
    return key


def _mac(key: bytes, grant: Grant) -> str:
    fields = grant.model_dump(mode="json", exclude={"mac"})
    message = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def issue(
    key: bytes,
    *,
    incident_id: str,
    step_id: str | None,
    action: str,
    principal_id: str,
    decision_id: str,
    now: datetime | None = None,
) -> Grant:
    """The API's grant for one action the policy allowed."""
    expires = (now or datetime.now(UTC)) + VALIDITY
    unsigned = Grant(
        incident_id=incident_id,
        step_id=step_id,
        action=action,
        principal_id=principal_id,
        decision_id=decision_id,
        expires_at=expires.isoformat(),
        mac="",
    )
    return unsigned.model_copy(update={"mac": _mac(key, unsigned)})


def granted(key: bytes, request: Any, action: str, incident_id: str) -> Any:
    """The request with a grant for itself: for tools that hold the approval key and act
    on Temporal directly (the drills, the benchmarks, the tests), as the API does once
    its policy allowed the action."""
    grant = issue(
        key,
        incident_id=request.incident_id or incident_id,
        step_id=getattr(request, "step_id", None),
        action=action,
        principal_id=request.principal.id,
        decision_id=request.authz_decision_id or "direct",
    )
    return request.model_copy(update={"grant": grant})


def refusal(key: bytes, check: GrantCheck, now: datetime | None = None) -> str | None:
    """Why the workflow must refuse this action, or None when the grant holds."""
    grant = check.grant
    if grant is None:
        return "no authorization from the Bulkhead API (an Update sent to Temporal directly?)"
    if not hmac.compare_digest(grant.mac, _mac(key, grant)):
        return "the authorization's signature does not verify (forged or altered)"
    expected = {
        "incident": (grant.incident_id, check.incident_id),
        "step": (grant.step_id, check.step_id),
        "action": (grant.action, check.action),
        "principal": (grant.principal_id, check.principal_id),
    }
    for name, (granted, asked) in expected.items():
        if granted != asked:
            return f"the authorization is for {name} {granted!r}, not {asked!r}"
    if datetime.fromisoformat(grant.expires_at) <= (now or datetime.now(UTC)):
        return f"the authorization expired at {grant.expires_at}"
    return None


class GrantVerifier:
    """The `verify_grant` local activity: workers hold the approval key, Temporal not."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @activity.defn(name=Activity.VERIFY_GRANT)
    async def verify_grant(self, check: GrantCheck) -> GrantVerdict:
        return GrantVerdict(refused=refusal(self._key, check))
