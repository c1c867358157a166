"""Turning what a Rego engine returned into a Decision or an Authorization, failing closed.

Shared by the embedded and the OPA engine, so both fail the same way on the same output.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import structlog
from pydantic import ValidationError

from contracts.decision import Decision, DecisionStep
from orchestrator.policy.base import ENTRYPOINT, Authorization, AuthorizationRequest, escalation
from orchestrator.policy.models import AuthorizationInput

log = structlog.get_logger(__name__)

# eval_rule_as_json renders an undefined rule as this JSON string rather than failing.
REGORUS_UNDEFINED = "<undefined>"


# Built once: json.dumps with any option builds a new encoder on every call (issue #18).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), check_circular=False)


def canonical_json(document: dict[str, Any]) -> str:
    """One serialization for both the engine and the digest, so they can never disagree.

    No cycle check: a policy document is plain JSON data dumped from a model, so it cannot
    hold a cycle, and the check costs a few microseconds of every decision (issue #18).
    """
    return _CANONICAL.encode(document)


def digest_of(canonical: str) -> str:
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


class InvalidRequestError(ValueError):
    """An authorization request no policy can be asked about; the text is the refusal's."""


def authorization_document(request: AuthorizationRequest) -> dict[str, Any]:
    """The JSON the approval policy evaluates; InvalidRequestError saying why there is none."""
    try:
        # An AuthorizationInput comes back as it is; a dict is checked as the model is.
        return AuthorizationInput.model_validate(request).document()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "(root)"
        raise InvalidRequestError(
            f"request is not a valid authorization input: {where}: {first['msg']}"
        ) from None
    except ValueError as exc:  # a value no JSON can hold, in a field that takes anything
        raise InvalidRequestError(f"request is not JSON: {exc}") from None


def decision_from(
    raw: Any, *, policy_version: str, decision_id: str, digest: str, entrypoint: str = ENTRYPOINT
) -> Decision:
    """The policy's object as a Decision; anything else is an escalation saying why."""
    if not isinstance(raw, dict):
        what = (
            "is undefined"
            if raw in (None, REGORUS_UNDEFINED)
            else f"is a {type(raw).__name__}, not an object"
        )
        return escalation(
            f"{entrypoint} {what}",
            policy_version=policy_version,
            decision_id=decision_id,
            digest=digest,
        )
    try:
        decision = Decision.model_validate(
            {
                **raw,
                # The engine's own fields: whatever the policy says, these are ours.
                "policy_version": policy_version,
                "decision_id": decision_id,
                "input_digest": digest,
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        log.warning("policy.invalid_decision", error=str(exc), decision_id=decision_id)
        return escalation(
            f"policy returned an invalid decision: {exc.error_count()} error(s), first: "
            f"{first['msg']} at {'/'.join(map(str, first['loc']))}",
            policy_version=policy_version,
            decision_id=decision_id,
            digest=digest,
        )
    silent = unexplained(decision.steps)
    if silent:
        return escalation(
            f"policy returned step(s) without a reason (`because`): {', '.join(silent)}",
            policy_version=policy_version,
            decision_id=decision_id,
            digest=digest,
        )
    return decision


# The fields the engine sets on every decision (decision_from overrides the policy's).
_quoted = json.encoder.encode_basestring_ascii
_ENGINE_FIELDS = ('"policy_version"', '"decision_id"', '"input_digest"')


def decision_from_json(
    text: str, *, policy_version: str, decision_id: str, digest: str, entrypoint: str = ENTRYPOINT
) -> Decision:
    """decision_from for the engine's JSON text, validated by pydantic straight from it.

    Parsing the text into dicts first and validating those costs about twice as much, on
    every decision (issue #18). The engine's fields are appended to the object's text, so
    only an object that does not name them itself takes this way; anything else, and any
    invalid decision, goes through decision_from, so the answer and its wording are the same.
    """
    body = text.rstrip()
    if body.startswith("{") and body != "{}" and not any(f in body for f in _ENGINE_FIELDS):
        # Each value quoted as json.dumps quotes a string, without building a dict to dump.
        ours = (
            f'"policy_version":{_quoted(policy_version)},'
            f'"decision_id":{_quoted(decision_id)},"input_digest":{_quoted(digest)}}}'
        )
        try:
            decision = Decision.model_validate_json(f"{body[:-1]},{ours}")
        except ValidationError:
            pass  # decision_from below says what is wrong, as it always has
        else:
            if not unexplained(decision.steps):
                return decision
    return decision_from(
        json.loads(text),
        policy_version=policy_version,
        decision_id=decision_id,
        digest=digest,
        entrypoint=entrypoint,
    )


def unexplained(steps: list[DecisionStep]) -> list[str]:
    """Steps that do not say why they are there: the decision contract requires a
    `because` on each, so responders and approvers never meet an unexplained change."""
    return [step.id for step in steps if not step.because]


def authorization_from(
    allow: Any, reasons: Any, *, policy_version: str, decision_id: str
) -> Authorization:
    """Only a literal `true` allows; a denial always says why."""
    said = sorted(str(r) for r in reasons) if isinstance(reasons, list) else []
    if allow is True:
        return Authorization(
            allow=True, decision_id=decision_id, policy_version=policy_version, reasons=[]
        )
    if not said:
        said = [
            "the approval policy is undefined for this request"
            if allow in (None, REGORUS_UNDEFINED)
            else "the approval policy does not allow it"
        ]
    return Authorization(
        allow=False, decision_id=decision_id, policy_version=policy_version, reasons=said
    )


def refusal(reason: str, *, policy_version: str, decision_id: str) -> Authorization:
    """The fail-closed answer of the approval policy."""
    return Authorization(
        allow=False, decision_id=decision_id, policy_version=policy_version, reasons=[reason]
    )
