"""Responder actions are admitted only with a grant the API made (#16 item 3).

An approve/deny/extend/release Update names a principal; before this, the workflow took
the name on trust, so a client that reached Temporal directly could approve as anyone.
Now each action must carry the API's grant (orchestrator/grants.py), which a worker
checks with the approval key in a local activity: the key never enters history, and the
check is recorded there. A grant is used once. Deterministic workflow code.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts.incident import (
        ApproveRequest,
        DenyRequest,
        ExtendRequest,
        GrantCheck,
        GrantVerdict,
        ReleaseRequest,
    )
    from contracts.names import Activity, ErrorType

# Histories from before grants replay without the verify_grant calls.
GRANTS_PATCH = "grants"
VERIFY_TIMEOUT = timedelta(seconds=5)
MAX_USED = 500  # grants remembered as used; one expires within minutes anyway

Request = ApproveRequest | DenyRequest | ExtendRequest | ReleaseRequest


class GrantGate:
    def __init__(self, used: list[str], record: Callable[..., None]) -> None:
        self.used: dict[str, None] = dict.fromkeys(used)
        self._record = record
        self.enabled = False  # set by the workflow's run, from GRANTS_PATCH

    async def admit(
        self, request: Request, *, action: str, incident_id: str, step_id: str | None
    ) -> None:
        """Return when the action is granted; refuse it (ApplicationError) otherwise."""
        if not self.enabled:
            return
        grant = request.grant
        if grant is not None and grant.mac in self.used:
            refused: str | None = "this authorization was already used"
        else:
            if grant is not None:  # reserved before the check: two racing uses, one wins
                self.used[grant.mac] = None
                while len(self.used) > MAX_USED:
                    del self.used[next(iter(self.used))]
            check = GrantCheck(
                grant=grant,
                incident_id=incident_id,
                step_id=step_id,
                action=action,
                principal_id=request.principal.id,
            )
            verdict = await workflow.execute_local_activity(
                Activity.VERIFY_GRANT,
                check,
                result_type=GrantVerdict,
                start_to_close_timeout=VERIFY_TIMEOUT,
            )
            refused = verdict.refused
        if refused is None:
            return
        self._record(
            "authorization.refused",
            action=action,
            step=step_id,
            principal=request.principal.name,
            principal_id=request.principal.id,
            reason=refused,
        )
        raise ApplicationError(
            f"{action} refused: {refused}", type=ErrorType.REFUSED, non_retryable=True
        )
