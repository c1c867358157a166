"""What a release will undo, said before it runs, and what it undid, said after.

A responder who releases an incident (or one step of it) should know first which steps
go back, which of them cut a suspect host off the network (releasing those lets it talk
again), which steps stay because nothing can undo them, and which waiting steps are
cancelled. Afterwards the same steps are read again: reverted, or not and why.
Both are pure functions of the incident's view; the API, the CLI and the console show them.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from contracts.incident import IncidentView, StepState, StepView
from orchestrator.responders.wording import plan_in_words

HOLDING = (StepState.APPLIED, StepState.VERIFIED)
WAITING = (StepState.PLANNED, StepState.AWAITING_APPROVAL, StepState.APPROVED)


class Kind(StrEnum):
    QUARANTINE = "quarantine"  # a host cut off the network, its own address
    ISOLATION = "isolation"  # a whole zone cut off, its management conduits kept open
    REVOCATION = "revocation"  # an identity disabled or its secrets revoked
    FALLBACK = "fallback"  # a device or service switched to its safe mode
    OTHER = "other"


class StepUndo(BaseModel):
    step_id: str
    kind: Kind
    adapter: str
    action: str
    target: dict[str, object]
    state: str
    words: str = Field(description="what the step did, as a sentence")
    error: str | None = None


class ReleasePreview(BaseModel):
    incident_id: str
    step_id: str | None = Field(None, description="the one step released; None: the incident")
    reverts: list[StepUndo] = Field(description="held steps undone, in the order undone")
    quarantines: list[str] = Field(description="steps among `reverts` that cut a host off")
    stays: list[StepUndo] = Field(description="held steps nothing can undo: they stay")
    cancels: list[StepUndo] = Field(description="steps not yet applied: denied, never applied")
    summary: str


class ReleaseReport(BaseModel):
    reverted: list[StepUndo]
    not_reverted: list[StepUndo] = Field(description="undo failed or was not observed: why")
    stayed: list[StepUndo]
    cancelled: list[StepUndo]
    summary: str


def kind_of(step: StepView) -> Kind:
    if step.adapter == "nftables":
        return Kind.ISOLATION if "zone" in step.target else Kind.QUARANTINE
    if step.adapter in ("ldap", "scim", "vault"):
        return Kind.REVOCATION
    if step.action == "set":
        return Kind.FALLBACK
    return Kind.OTHER


def _undo(step: StepView) -> StepUndo:
    return StepUndo(
        step_id=step.id,
        kind=kind_of(step),
        adapter=step.adapter,
        action=step.action,
        target=dict(step.target),
        state=step.state.value,
        words=plan_in_words(step.model_dump(mode="json")),
        error=step.error,
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _says(n: int, word: str, verb: str, verb_plural: str) -> str:
    return f"{_plural(n, word)} {verb if n == 1 else verb_plural}"


def preview(view: IncidentView, step_id: str | None = None) -> ReleasePreview:
    """What releasing the incident (or only `step_id`) would do now."""
    steps = [s for s in view.steps if step_id is None or s.id == step_id]
    holding = sorted(
        (s for s in steps if s.state in HOLDING), key=lambda s: s.applied_seq or 0, reverse=True
    )
    reverts = [_undo(s) for s in holding if s.reversible]
    stays = [_undo(s) for s in holding if not s.reversible]
    cancels = [] if step_id else [_undo(s) for s in steps if s.state in WAITING]
    quarantines = [u.step_id for u in reverts if u.kind is Kind.QUARANTINE]
    parts = [f"undoes {_plural(len(reverts), 'step')}"]
    if quarantines:
        parts.append(f"{_plural(len(quarantines), 'quarantined host')} can talk again")
    if stays:
        parts.append(_says(len(stays), "irreversible step", "stays", "stay"))
    if cancels:
        parts.append(_says(len(cancels), "waiting step", "is cancelled", "are cancelled"))
    return ReleasePreview(
        incident_id=view.incident_id,
        step_id=step_id,
        reverts=reverts,
        quarantines=quarantines,
        stays=stays,
        cancels=cancels,
        summary="; ".join(parts) if reverts or stays or cancels else "nothing to undo",
    )


def settled(view: IncidentView) -> ReleaseReport:
    """What a finished release did, from the incident alone: every step it applied went
    back, could not, or stayed; every step that never ran was cancelled."""
    applied = [s for s in view.steps if s.applied_seq]
    before = ReleasePreview(
        incident_id=view.incident_id,
        reverts=[_undo(s) for s in applied if s.reversible],
        quarantines=[],
        stays=[_undo(s) for s in applied if not s.reversible],
        cancels=[_undo(s) for s in view.steps if s.state is StepState.DENIED],
        summary="",
    )
    return report(before, view)


def report(before: ReleasePreview, after: IncidentView) -> ReleaseReport:
    """What the release did to each step the preview named, read back from the incident."""
    now = {s.id: s for s in after.steps}

    def read(undo: StepUndo) -> StepUndo:
        step = now.get(undo.step_id)
        return _undo(step) if step is not None else undo

    reverted: list[StepUndo] = []
    not_reverted: list[StepUndo] = []
    for undo in before.reverts:
        again = read(undo)
        (reverted if again.state == StepState.ROLLED_BACK.value else not_reverted).append(again)
    summary = f"reverted {_plural(len(reverted), 'step')}"
    if not_reverted:
        summary += f"; {_plural(len(not_reverted), 'step')} could not be reverted"
    if before.stays:
        summary += f"; {_plural(len(before.stays), 'irreversible step')} stayed"
    return ReleaseReport(
        reverted=reverted,
        not_reverted=not_reverted,
        stayed=[read(u) for u in before.stays],
        cancelled=[read(u) for u in before.cancels],
        summary=summary,
    )
