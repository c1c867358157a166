"""The approval gate as a pure function: four-eyes compares principal ids, never names."""

from __future__ import annotations

from contracts.incident import ApprovalRecord, ApproveRequest, Principal, StepState, StepView
from workflows import gates

ISSUER = "https://idp.city.test/realms/ops"


def step(*approvals: ApprovalRecord, **changes: object) -> StepView:
    fields: dict[str, object] = {
        "id": "fallback:tsc-0001",
        "adapter": "modbus",
        "action": "set",
        "target": {"asset": "tsc-0001"},
        "state": StepState.AWAITING_APPROVAL,
        "automatic": False,
        "required_approvals": 2,
        "approvals": list(approvals),
        **changes,
    }
    return StepView.model_validate(fields)


def who(principal_id: str, name: str, *roles: str) -> Principal:
    return Principal(id=principal_id, name=name, roles=list(roles or ["responder"]))


def approved_by(principal: Principal) -> ApprovalRecord:
    return ApprovalRecord(
        principal=principal.name,
        principal_id=principal.id,
        roles=principal.roles,
        reason="ok",
        at="2026-01-01T00:00:00+00:00",
    )


def refusal(view: StepView, principal: Principal) -> str | None:
    request = ApproveRequest(step_id=view.id, principal=principal, reason="ok")
    return gates.approval_refusal(view, request)


def test_the_same_id_under_another_display_name_is_refused_as_already_approved():
    olivia = who(f"oidc:{ISSUER}#u-1", "olivia")
    renamed = who(f"oidc:{ISSUER}#u-1", "u-1")
    said = refusal(step(approved_by(olivia)), renamed)
    assert said is not None and "u-1 already approved" in said


def test_another_id_under_the_same_display_name_may_approve():
    first = who(f"oidc:{ISSUER}#u-1", "sam")
    assert refusal(step(approved_by(first)), who(f"oidc:{ISSUER}#u-2", "sam")) is None


def test_a_local_principal_and_an_idp_user_of_one_name_are_two_people():
    duty1 = who("local:duty1", "duty1")
    assert refusal(step(approved_by(duty1)), who(f"oidc:{ISSUER}#duty1", "duty1")) is None
    assert refusal(step(approved_by(duty1)), who("local:duty1", "duty1")) is not None


def test_an_approval_recorded_without_an_id_counts_as_the_local_principal_of_its_name():
    legacy = ApprovalRecord.model_validate(
        {"principal": "alice", "roles": ["responder"], "reason": "ok", "at": "then"}
    )
    assert legacy.principal_id == "local:alice"
    assert refusal(step(legacy), who("local:alice", "alice")) is not None
    assert refusal(step(legacy), who(f"oidc:{ISSUER}#alice", "alice")) is None


def test_the_requester_cannot_approve_by_id_whatever_the_name():
    view = step(requested_by="alice", requested_by_id=f"oidc:{ISSUER}#u-9")
    said = refusal(view, who(f"oidc:{ISSUER}#u-9", "someone else"))
    assert said is not None and "requested step" in said
    assert refusal(view, who("local:alice", "alice")) is None


def test_a_step_the_policy_requested_has_no_requester_any_principal_could_match():
    """Even a local principal named `policy` is not the policy."""
    view = step()
    assert view.requested_by == "policy" and view.requested_by_id is None
    assert refusal(view, who("local:policy", "policy")) is None


def test_a_step_recorded_with_a_named_requester_but_no_id_keeps_it_local():
    view = StepView.model_validate(
        {
            "id": "s",
            "adapter": "modbus",
            "action": "set",
            "target": {},
            "state": "awaiting_approval",
            "requested_by": "bob",
        }
    )
    assert view.requested_by_id == "local:bob"


def test_a_principal_sent_without_an_id_is_the_local_principal_of_its_name():
    assert Principal.model_validate({"name": "dora", "roles": []}).id == "local:dora"
