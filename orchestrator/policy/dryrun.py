"""Turn what a person hands a dry run into a policy input.

Accepted: a full policy input (it has `automation`), a case file (`{"input": …}`), a
request `{"incident_id"?, "findings": […], "automation_paused"?, "active_containments"?}`,
one OCSF finding, or a list of findings. Used by `bulkhead policy eval|replay` and
`POST /v1/policy/evaluate`, so all three read the same shapes.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from contracts.decision import DecideRequest
from contracts.findings import Finding
from orchestrator.ingest.connectors.generic import GenericConnector
from orchestrator.policy.input import containment_input
from orchestrator.policy.models import Automation, ContainmentInput
from orchestrator.wiring.inventory import Inventory


class DryRunError(ValueError):
    """The document is none of the accepted shapes; `errors` are JSON pointers + details."""

    def __init__(self, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []


def _pointers(exc: ValidationError, prefix: str) -> list[dict[str, str]]:
    return [
        {"pointer": prefix + "/" + "/".join(str(p) for p in e["loc"]), "detail": e["msg"]}
        for e in exc.errors()
    ]


def policy_input_from(
    document: Any,
    inventory: Inventory,
    *,
    incident_id: str = "dry-run",
    automation_paused: bool | None = None,
    active_containments: int | None = None,
) -> ContainmentInput:
    """The policy input for `document`; explicit keyword values override the document's."""
    if isinstance(document, dict) and isinstance(document.get("input"), dict):
        document = document["input"]  # a case file
    if isinstance(document, dict) and "automation" in document:
        return _full_input(
            document,
            automation_paused=automation_paused,
            active_containments=active_containments,
        )
    if isinstance(document, dict) and "findings" in document:
        raw_findings, prefix = document["findings"], "/findings"
        incident_id = str(document.get("incident_id") or incident_id)
        if automation_paused is None:
            automation_paused = bool(document.get("automation_paused", False))
        if active_containments is None:
            active_containments = int(document.get("active_containments", 0))
    elif isinstance(document, list | dict):
        raw_findings = document if isinstance(document, list) else [document]
        prefix = ""
    else:
        raise DryRunError("expected a JSON object or a list of findings")
    findings = _findings(raw_findings, prefix)
    try:
        return input_for_findings(
            findings,
            inventory,
            incident_id=incident_id,
            automation_paused=bool(automation_paused),
            active_containments=active_containments or 0,
        )
    except ValidationError as exc:  # the findings are valid: a count below zero, say
        raise DryRunError("not a valid policy input", _pointers(exc, "")) from None


def input_for_findings(
    findings: list[Finding],
    inventory: Inventory,
    *,
    incident_id: str = "dry-run",
    automation_paused: bool = False,
    active_containments: int = 0,
) -> ContainmentInput:
    """Findings already normalized (by a connector, say) enriched as the decide activity does."""
    request = DecideRequest(incident_id=incident_id, findings=findings)
    return containment_input(
        request,
        inventory,
        automation_paused=automation_paused,
        active_containments=active_containments,
    )


def _full_input(
    document: dict[str, Any], *, automation_paused: bool | None, active_containments: int | None
) -> ContainmentInput:
    try:
        full = ContainmentInput.model_validate(document)
    except ValidationError as exc:
        raise DryRunError("not a valid policy input", _pointers(exc, "")) from None
    overrides: dict[str, Any] = {}
    if automation_paused is not None:
        overrides["automation"] = Automation(paused=automation_paused)
    if active_containments is not None:
        overrides["active_containments"] = active_containments
    # model_copy marks the overrides as set (they are in the document) without validating
    # them: they come typed from the callers' flags, and the policy sees them as given.
    return full.model_copy(update=overrides)


def _findings(raw_findings: Any, prefix: str) -> list[Finding]:
    if not isinstance(raw_findings, list) or not raw_findings:
        raise DryRunError("no findings to evaluate")
    findings: list[Finding] = []
    errors: list[dict[str, str]] = []
    for index, raw in enumerate(raw_findings):
        where = f"{prefix}/{index}" if prefix or len(raw_findings) > 1 else ""
        # As the `generic` webhook takes it: any valid OCSF finding, or Bulkhead's own form.
        for item in GenericConnector().items(raw, 0):
            errors += [{"pointer": where + e.pointer, "detail": e.detail} for e in item.errors]
            if item.finding is not None:
                findings.append(item.finding)
    if errors:
        raise DryRunError(f"{len(errors)} invalid field(s) in the findings", errors)
    return findings
