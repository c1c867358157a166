"""What the console's pages show, built from the workflow's incident view.

Which buttons are enabled is the approval policy's answer, asked ahead of time with the
very input the responder service authorizes with when the button is pressed
(orchestrator.responders.authorization: `ask` here, `authorize` there); no role is
tested here. Which buttons exist at all follows the step's state only (approve or deny
a waiting step, extend a held lease), and the workflow re-checks that anyway.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from contracts.decision import Reason
from contracts.findings import SeverityId
from contracts.incident import IncidentStatus, IncidentView, Principal, StepState, StepView
from orchestrator.api.context import ApiContext
from orchestrator.responders import authorization, times, undo, wording
from orchestrator.responders.links import step_anchor

STEP_ACTIONS: dict[StepState, tuple[str, ...]] = {
    StepState.AWAITING_APPROVAL: ("approve", "deny"),
    StepState.APPROVED: ("deny",),  # until apply starts, a step can still be stopped
    StepState.APPLIED: ("extend", "release"),
    StepState.VERIFIED: ("extend", "release"),
}
FINISHED = frozenset({IncidentStatus.RELEASED, IncidentStatus.CLOSED})
AUDIT_SHOWN = 100
# Dry authorizations run here, off the event loop: an OPA server answers over HTTP, and a
# slow one must not stall other requests. Few threads: each compiles the embedded policy.
_AUTHZ = ThreadPoolExecutor(max_workers=2, thread_name_prefix="console-authz")


@dataclass(frozen=True)
class Button:
    action: str
    allowed: bool
    why_not: str = ""


@dataclass
class Card:
    """One step as the incident page shows it."""

    step: StepView
    anchor: str
    buttons: dict[str, Button] = field(default_factory=dict)
    plan: dict[str, Any] | None = None
    because: list[Reason] = field(default_factory=list)  # the policy's, for this step

    @property
    def preview(self) -> dict[str, Any] | None:
        """The dry run made when the step began to wait, until apply plans for real."""
        if self.plan is not None or self.step.preview is None:
            return None
        return self.step.preview.model_dump()

    @property
    def words(self) -> str:
        return wording.plan_in_words(self.step.model_dump(mode="json"))

    @property
    def quarantine(self) -> bool:
        return undo.kind_of(self.step) is undo.Kind.QUARANTINE

    @property
    def reason_form(self) -> bool:
        return "approve" in self.buttons or "deny" in self.buttons


def _dry_run(
    context: ApiContext,
    principal: Principal,
    checks: Sequence[tuple[str, IncidentView | None, StepView | None]],
) -> list[Button]:
    engine = context.engine
    answers: list[Button] = []
    for action, view, step in checks:
        if engine is None:
            answers.append(Button(action, allowed=False, why_not="no policy is loaded"))
            continue
        verdict = authorization.ask(engine, action, principal, view, step)
        why = "" if verdict.allow else authorization.why_not(verdict)
        answers.append(Button(action, verdict.allow, why))
    return answers


async def dry_authorize(
    context: ApiContext,
    principal: Principal,
    checks: Sequence[tuple[str, IncidentView | None, StepView | None]],
) -> list[Button]:
    """The policy's answer for each (action, incident, step), without acting."""
    if not checks:
        return []
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_AUTHZ, _dry_run, context, principal, list(checks))


def plans(view: IncidentView) -> dict[str, dict[str, Any]]:
    """Each step's plan as recorded before apply (what the target held, what it will hold)."""
    found: dict[str, dict[str, Any]] = {}
    for entry in view.audit:
        if entry.kind == "step.intent" and isinstance(entry.detail.get("step"), str):
            found[entry.detail["step"]] = entry.detail
    return found


async def incident_page(
    context: ApiContext, principal: Principal, view: IncidentView
) -> dict[str, Any]:
    """The template context of one incident: its step cards with buttons and plans."""
    recorded = plans(view)
    reasons = {s.id: s.because for s in view.decision.steps} if view.decision else {}
    cards = [
        Card(
            step=step,
            anchor=step_anchor(step.id),
            plan=recorded.get(step.id),
            because=reasons.get(step.id, []),
        )
        for step in view.steps
    ]
    releasable = view.status not in FINISHED
    checks: list[tuple[str, IncidentView | None, StepView | None]] = [
        (action, view, card.step)
        for card in cards
        for action in STEP_ACTIONS.get(card.step.state, ())
        if (action != "extend" or card.step.lease_expires_at)
        and (action != "release" or (card.step.reversible and releasable))
    ]
    if releasable:
        checks.append(("release", view, None))
    answers = iter(await dry_authorize(context, principal, checks))
    by_id = {card.step.id: card for card in cards}
    release: Button | None = None
    for action, _, step in checks:
        answer = next(answers)
        if step is None:
            release = answer
        else:
            by_id[step.id].buttons[action] = answer
    audit = list(reversed(view.audit))[:AUDIT_SHOWN]
    return {
        "view": view,
        "cards": cards,
        "release": release,
        # What a release would undo, shown before its button; once released, what it did.
        "release_preview": undo.preview(view) if releasable else None,
        "release_outcome": undo.settled(view) if view.status is IncidentStatus.RELEASED else None,
        "audit": audit,
        "severity": max((int(f.severity_id) for f in view.findings), default=0),
        "zones": sorted({r.zone for f in view.findings for r in f.resources if r.zone}),
    }


@dataclass(frozen=True)
class Pending:
    view: IncidentView
    step: StepView
    anchor: str
    button: Button
    # What approving does, in words (responders/wording.py), and the deadline in UTC with
    # its countdown: an approver reads a sentence and a time, not the step's JSON.
    plan: str = ""
    decide_by: str = "-"
    overdue: bool = False


async def pending_approvals(
    context: ApiContext, principal: Principal, views: Sequence[IncidentView]
) -> list[Pending]:
    """Every step waiting for a person, oldest deadline first, and whether I may approve."""
    waiting = [
        (view, step, step_anchor(step.id))
        for view in views
        for step in view.steps
        if step.state is StepState.AWAITING_APPROVAL
    ]
    answers = await dry_authorize(context, principal, [("approve", v, s) for v, s, _ in waiting])
    rows = [
        _pending(view, step, link, button)
        for (view, step, link), button in zip(waiting, answers, strict=True)
    ]
    rows.sort(key=lambda p: (p.step.approval_deadline or "~", p.view.incident_id, p.step.id))
    return rows


def _pending(view: IncidentView, step: StepView, link: str, button: Button) -> Pending:
    shown = step.model_dump(mode="json")
    # `overdue_since` is set by workflows that know it; older ones leave it to the clock.
    overdue = bool(shown.get("overdue_since")) or times.passed(step.approval_deadline)
    return Pending(
        view,
        step,
        link,
        button,
        plan=wording.plan_in_words(shown),
        decide_by=times.labelled(step.approval_deadline) if step.approval_deadline else "-",
        overdue=overdue,
    )


# --- template filters ---------------------------------------------------------------------


def epoch_ms(value: int | None) -> str:
    if value is None:
        return "—"
    return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def compact(value: Any) -> str:
    """JSON on one line, keys sorted: targets, args, receipts and audit details."""
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)


def severity_name(value: int) -> str:
    try:
        return SeverityId(value).name.capitalize()
    except ValueError:
        return str(value)


def label(value: str) -> str:
    """An enum value for people: `awaiting_approval` → `awaiting approval`."""
    return value.replace("_", " ")
