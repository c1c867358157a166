"""The OpenC2 undo: `delete slpf:rule_number` (SLPF §2.3.4.1), `allow device` (ER §2.3.4.1)
and `set er:account` enabled release what a producer's command contained.

A rule number names a step (openc2_consumer.rule_number); the incidents holding steps
are found in Temporal visibility (each publishes its id and its steps' states), so no
incident is queried but the one that holds the rule. The undo releases exactly the steps
it names, one by one (the workflow's `release_step` update), and only steps this
producer commanded; the incident's other steps stay. A step nothing can undo (an
OpenBao lease revoked) is said to stay. Whether the producer may release each step is
the approval policy's decision, asked with the step and who commanded it
(`step.commanded_by`).
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.incident import IncidentView, Principal, ReleaseStepRequest, StepView
from orchestrator.api.context import ApiContext
from orchestrator.api.listing import Filters
from orchestrator.api.openc2_outcome import HELD, Outcome
from orchestrator.ingest.entity import incident_id_for
from orchestrator.policy.base import PolicyEngine
from orchestrator.policy.models import AuthorizationInput
from orchestrator.responders import authorization, grants
from orchestrator.standards.openc2_carry import commands_of
from orchestrator.standards.openc2_consumer import Undo, names_step
from orchestrator.temporal import errors as temporal
from orchestrator.temporal.incidents import IncidentClient


@dataclass(frozen=True)
class Held:
    view: IncidentView
    step_ids: tuple[str, ...]


async def find_rule(
    incidents: IncidentClient, task_queue: str, number: int
) -> tuple[str, str] | None:
    """(incident id, step id) of the running incident whose step the rule number names."""
    query = f"{Filters().query(task_queue)} AND ExecutionStatus = 'Running'"
    async for listed in incidents.runs(query):
        if listed.published is None:
            continue
        incident_id = listed.published.incident_id or listed.workflow_id
        for step_id, _state in listed.published.steps:
            if names_step(number, incident_id, step_id):
                return incident_id, step_id
    return None


def commanded_by(view: IncidentView, step_id: str) -> set[str]:
    """The producers (principal ids) whose commands in this incident asked for the step."""
    return {
        c.producer.id for c in commands_of(view.findings) if any(s.id == step_id for s in c.steps)
    }


async def undo(context: ApiContext, request: Undo, producer: Principal) -> Outcome:
    incidents = IncidentClient(context.client)
    try:
        held = await _held(incidents, context.settings.task_queue, request)
    except temporal.Unavailable as exc:
        return Outcome(503, f"the incidents cannot be read now: {exc.message}")
    if isinstance(held, Outcome):
        return held
    view = held.view
    mine = {s.id for s in view.steps if s.state in HELD and producer.id in commanded_by(view, s.id)}
    foreign = [i for i in held.step_ids if i not in mine]
    if foreign:
        return Outcome(
            403,
            f"{', '.join(foreign)} in incident {view.incident_id} is not what {producer.name} "
            "commanded; a responder releases it (bulkhead release)",
            view.incident_id,
        )
    engine = context.engine
    if engine is None:
        return Outcome(503, "no policy is loaded, so no release can be authorized")
    stays = []
    for step_id in held.step_ids:
        step = next(s for s in view.steps if s.id == step_id)
        if not step.reversible:
            stays.append(step_id)
            continue
        refused = await _release_step(
            context, engine, incidents, producer=producer, view=view, step=step
        )
        if refused is not None:
            return refused
    try:
        after = await incidents.state(view.incident_id)
    except (temporal.NotFound, temporal.Unavailable) as exc:
        return Outcome(500, f"released, but the incident cannot be read back: {exc}")
    states = {s.id: s.state.value for s in after.steps if s.id in held.step_ids}
    said = f"released {', '.join(i for i in held.step_ids if i not in stays) or 'nothing'}"
    if stays:
        said += f"; {', '.join(stays)} cannot be undone and stays"
    return Outcome(200, said, after.incident_id, states)


async def _release_step(
    context: ApiContext,
    engine: PolicyEngine,
    incidents: IncidentClient,
    *,
    producer: Principal,
    view: IncidentView,
    step: StepView,
) -> Outcome | None:
    """Release one step the producer commanded; the Outcome that stops the undo, if any."""
    document = authorization.authorization_input("release", producer, view, step).model_dump(
        mode="json", exclude_unset=True
    )
    document["step"]["commanded_by"] = producer.id
    verdict = engine.authorize(AuthorizationInput.model_validate(document))
    if not verdict.allow:
        return Outcome(
            403, "refused by policy: " + authorization.why_not(verdict), view.incident_id
        )
    grant = grants.issue(
        context.approval_key,
        incident_id=view.incident_id,
        step_id=step.id,
        action="release",
        principal_id=producer.id,
        decision_id=verdict.decision_id,
    )
    release = ReleaseStepRequest(
        step_id=step.id,
        principal=producer,
        reason=f"OpenC2 undo of {step.id} by {producer.name}",
        authz_decision_id=verdict.decision_id,
        incident_id=view.incident_id,
        grant=grant,
    )
    try:
        await incidents.release_step(view.incident_id, release)
    except temporal.Refused as exc:
        return Outcome(
            500, f"firewall rule not removed or updated: {exc.message}", view.incident_id
        )
    except temporal.NotFound:
        return Outcome(404, f"incident {view.incident_id} has ended; nothing to undo")
    except (temporal.Unavailable, temporal.UpdateFailed) as exc:
        return Outcome(500, f"not released: {exc}", view.incident_id)
    return None


async def _held(incidents: IncidentClient, task_queue: str, request: Undo) -> Held | Outcome:
    if request.rule_number is not None:
        found = await find_rule(incidents, task_queue, request.rule_number)
        if found is None:
            return Outcome(404, f"no rule {request.rule_number} is in force")
        incident_id, step_id = found
        ids: tuple[str, ...] = (step_id,)
        key = incident_id
    else:
        ids = request.step_ids
        key = incident_id_for(request.entity or "")
    try:
        view = await incidents.state(key)
    except temporal.NotFound:
        return Outcome(404, f"Bulkhead holds nothing of {request.entity or key}")
    live = tuple(i for i in ids if any(s.id == i and s.state in HELD for s in view.steps))
    if not live:
        return Outcome(404, f"Bulkhead holds no {', '.join(ids)} in {view.incident_id}")
    return Held(view, live)
