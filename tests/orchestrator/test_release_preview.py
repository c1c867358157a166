"""The release preview and report over steps shaped as the shipped policy emits them
(policies/bulkhead/containment/steps.rego: quarantine, isolate, revoke, fallback)."""

from __future__ import annotations

from typing import Any

from contracts.incident import IncidentStatus, IncidentView, StepState, StepView
from orchestrator.responders import undo

QUARANTINE = {
    "id": "quarantine:eng-ws-03",
    "adapter": "nftables",
    "action": "contain",
    "target": {"device": "eng-ws-03"},
    "args": {"timeout_s": 3600},
}
ISOLATE = {
    "id": "isolate:energy",
    "adapter": "nftables",
    "action": "contain",
    "target": {"zone": "energy"},
    "args": {"allow": ["soc-mgmt", "dispatch-preemption"], "timeout_s": 1800},
}
REVOKE_VAULT = {
    "id": "revoke:svc-scada@vault-city",
    "adapter": "vault",
    "action": "deny",
    "target": {"identity": "svc-scada", "system": "vault-city"},
    "reversible": False,
}
FALLBACK = {
    "id": "fallback:rtu-e01",
    "adapter": "opcua",
    "action": "set",
    "target": {"asset": "rtu-e01"},
    "args": {"mode": "local_manual"},
}


def step(shape: dict[str, Any], state: StepState, seq: int | None = None, **more: Any) -> StepView:
    return StepView.model_validate({**shape, "state": state, "applied_seq": seq, **more})


def incident(*steps: StepView) -> IncidentView:
    return IncidentView(
        incident_id="inc-1",
        status=IncidentStatus.CONTAINED,
        entity="device:eng-ws-03",
        findings=[],
        steps=list(steps),
    )


def test_the_preview_names_quarantines_irreversible_steps_and_cancelled_gates():
    view = incident(
        step(QUARANTINE, StepState.VERIFIED, 1),
        step(ISOLATE, StepState.VERIFIED, 3),
        step(REVOKE_VAULT, StepState.VERIFIED, 2),
        step(FALLBACK, StepState.AWAITING_APPROVAL),
    )
    preview = undo.preview(view)
    assert [u.step_id for u in preview.reverts] == ["isolate:energy", "quarantine:eng-ws-03"]
    assert [u.kind for u in preview.reverts] == [undo.Kind.ISOLATION, undo.Kind.QUARANTINE]
    assert preview.quarantines == ["quarantine:eng-ws-03"]
    assert [(u.step_id, u.kind) for u in preview.stays] == [
        ("revoke:svc-scada@vault-city", undo.Kind.REVOCATION)
    ]
    assert [(u.step_id, u.kind) for u in preview.cancels] == [
        ("fallback:rtu-e01", undo.Kind.FALLBACK)
    ]
    assert preview.summary == (
        "undoes 2 steps; 1 quarantined host can talk again; 1 irreversible step stays; "
        "1 waiting step is cancelled"
    )


def test_a_step_preview_names_that_step_only_and_cancels_nothing():
    view = incident(step(QUARANTINE, StepState.VERIFIED, 1), step(ISOLATE, StepState.VERIFIED, 2))
    preview = undo.preview(view, "quarantine:eng-ws-03")
    assert [u.step_id for u in preview.reverts] == ["quarantine:eng-ws-03"]
    assert preview.step_id == "quarantine:eng-ws-03" and preview.cancels == []


def test_nothing_held_is_said_plainly():
    view = incident(step(QUARANTINE, StepState.ROLLED_BACK, 1))
    assert undo.preview(view).summary == "nothing to undo"


def test_the_report_says_what_could_not_be_reverted_and_why():
    before = incident(step(QUARANTINE, StepState.VERIFIED, 1), step(ISOLATE, StepState.VERIFIED, 2))
    preview = undo.preview(before)
    after = incident(
        step(QUARANTINE, StepState.ROLLED_BACK, 1),
        step(ISOLATE, StepState.FAILED, 2, error="rollback failed: nft: No such file"),
    )
    report = undo.report(preview, after)
    assert [u.step_id for u in report.reverted] == ["quarantine:eng-ws-03"]
    assert [(u.step_id, u.error) for u in report.not_reverted] == [
        ("isolate:energy", "rollback failed: nft: No such file")
    ]
    assert report.summary == "reverted 1 step; 1 step could not be reverted"
