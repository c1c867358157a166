"""What became of an OpenC2 command: read back through the incident's own state query.

The command went in as a finding (orchestrator/standards/openc2_carry.py); the incident's
audit says when it took the finding (`finding.received`, or `finding.duplicate` for a
command sent again) and the first `decision` after that is the policy's answer to it. Its
steps then say the rest: waiting for approval (102), verified (200), failed (500), denied
by a responder (403). A step the decision does not name was refused (403, with the
decision's reasons). Nothing here writes; it polls `IncidentClient.state` until the answer
the producer asked for (`response_requested`, LS §3.3.1.4) is there or time is up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts.incident import AuditEntry, IncidentView, StepState, StepView
from orchestrator.temporal.errors import NotFound, Unavailable
from orchestrator.temporal.incidents import IncidentClient

RECEIVED = ("finding.received", "finding.duplicate", "finding.updated")
DONE = frozenset({StepState.VERIFIED, StepState.EXPIRED, StepState.ROLLED_BACK})
ENDED = frozenset({StepState.DENIED, StepState.FAILED, StepState.ROLLED_BACK, StepState.EXPIRED})
HELD = frozenset(
    {
        StepState.PLANNED,
        StepState.AWAITING_APPROVAL,
        StepState.APPROVED,
        StepState.APPLYING,
        StepState.APPLIED,
        StepState.VERIFIED,
        StepState.ROLLING_BACK,
    }
)
POLL_S = (0.05, 0.1, 0.2, 0.3)  # the first answers come within tens of milliseconds


@dataclass
class Outcome:
    """The OpenC2 response to a proposal: status, status_text, and Bulkhead's results."""

    status: int
    text: str
    incident_id: str | None = None
    steps: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    """How far the incident has got with the command."""

    view: IncidentView
    received: AuditEntry | None
    decision: AuditEntry | None


def seen(view: IncidentView, uid: str) -> Seen:
    received = next(
        (e for e in view.audit if e.kind in RECEIVED and e.detail.get("uid") == uid), None
    )
    decision = None
    if received is not None:
        decision = next(
            (e for e in view.audit if e.kind == "decision" and e.seq > received.seq), None
        )
    return Seen(view, received, decision)


def _pause(attempt: int) -> float:
    return POLL_S[min(attempt, len(POLL_S) - 1)]


async def follow(
    incidents: IncidentClient,
    key: str,
    uid: str,
    step_ids: Sequence[str],
    *,
    wanted: str,
    wait_s: float,
) -> Outcome:
    """Poll the incident of `key` until the command is received (`ack`), decided
    (`status`) or its steps done (`complete`), or `wait_s` passes: then 102."""
    deadline = time.monotonic() + wait_s
    last: Seen | None = None
    attempt = 0
    while True:
        try:
            last = seen(await incidents.state(key), uid)
        except (NotFound, Unavailable):
            last = None  # not started yet, or Temporal slow: the finding is durable anyway
        outcome = _judge(last, step_ids, wanted) if last is not None else None
        if outcome is not None:
            return outcome
        if time.monotonic() >= deadline:
            return _pending(last, step_ids)
        await asyncio.sleep(_pause(attempt))
        attempt += 1


def _judge(now: Seen, step_ids: Sequence[str], wanted: str) -> Outcome | None:
    if now.received is None:
        return None
    if wanted in ("none", "ack"):
        return _pending(now, step_ids, "the command is taken; the policy decides it next")
    duplicate = now.received.kind == "finding.duplicate"
    if now.decision is None and not duplicate:
        return None
    steps = {s.id: s for s in now.view.steps}
    decided: list[str] = list(now.decision.detail.get("steps", [])) if now.decision else []
    taken = [i for i in step_ids if i in steps and (duplicate or i in decided)]
    if not taken:
        reasons = now.decision.detail.get("reasons", []) if now.decision else []
        return Outcome(
            403,
            "refused by policy: " + ("; ".join(map(str, reasons)) or "no step was decided"),
            now.view.incident_id,
        )
    held = [steps[i] for i in taken]
    if (
        wanted == "status"
        or all(s.state in DONE | ENDED for s in held)
        or any(s.state is StepState.AWAITING_APPROVAL for s in held)
    ):
        return judge_steps(now.view, held, refused=[i for i in step_ids if i not in taken])
    return None


def judge_steps(view: IncidentView, held: Sequence[StepView], *, refused: Sequence[str]) -> Outcome:
    """One answer for the command's steps, the least finished deciding it."""
    states = {s.id: s.state.value for s in held}
    note = f" (refused by policy: {', '.join(refused)})" if refused else ""
    failed = [s for s in held if s.state in (StepState.FAILED, StepState.ROLLED_BACK)]
    denied = [s for s in held if s.state is StepState.DENIED]
    waiting = [s for s in held if s.state is StepState.AWAITING_APPROVAL]
    if failed:
        detail = "; ".join(f"{s.id}: {s.error or s.state.value}" for s in failed)
        return Outcome(
            500, f"step(s) failed and were rolled back: {detail}", view.incident_id, states
        )
    if denied:
        who = "; ".join(
            f"{s.id} by {s.denial.principal}: {s.denial.reason}" if s.denial else s.id
            for s in denied
        )
        return Outcome(403, f"denied by a responder: {who}", view.incident_id, states)
    if waiting:
        return Outcome(102, _waiting_text(view, waiting) + note, view.incident_id, states)
    if all(s.state in DONE for s in held):
        return Outcome(200, f"done in incident {view.incident_id}{note}", view.incident_id, states)
    return Outcome(
        102,
        f"accepted in incident {view.incident_id}; "
        + ", ".join(f"{i} {state}" for i, state in states.items())
        + note,
        view.incident_id,
        states,
    )


def _waiting_text(view: IncidentView, waiting: Sequence[StepView]) -> str:
    gates = []
    for step in waiting:
        needs = f"{step.required_approvals} approval(s)"
        if step.must_include_roles:
            needs += f", a {' and a '.join(step.must_include_roles)} among them"
        gates.append(f"{step.id} needs {needs}")
    return f"waiting for approval in incident {view.incident_id}: " + "; ".join(gates)


def _pending(now: Seen | None, step_ids: Sequence[str], text: str | None = None) -> Outcome:
    if now is None or now.received is None:
        return Outcome(102, text or "the command is durable and waits for a worker to take it")
    states = {s.id: s.state.value for s in now.view.steps if s.id in step_ids}
    return Outcome(
        102,
        text or f"accepted in incident {now.view.incident_id}; the policy has not answered yet",
        now.view.incident_id,
        states,
    )


def results(outcome: Outcome, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """LS §3.3.2.2 results: Bulkhead's own under its `x-` namespace (LS §3.1.4)."""
    found: dict[str, Any] = dict(extra or {})
    if outcome.incident_id:
        found["x-bulkhead"] = {"incident_id": outcome.incident_id, "steps": outcome.steps}
    return found
