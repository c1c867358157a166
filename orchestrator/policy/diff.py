"""What changed between two decisions: verdict, steps added or removed, fields of a step.

Used by `bulkhead policy replay` (two policy versions) and by the `cases/` check (the
expected decision against the actual one), so both speak the same language.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.decision import DecisionStep, Verdict


@dataclass(frozen=True)
class Change:
    kind: str  # "verdict" | "added" | "removed" | "changed"
    step: str = ""
    field: str = ""
    before: Any = None
    after: Any = None

    def describe(self) -> str:
        if self.kind == "verdict":
            return f"verdict {self.before} → {self.after}"
        if self.kind == "added":
            return f"+ {self.step} ({_summary(self.after)})"
        if self.kind == "removed":
            return f"- {self.step} ({_summary(self.before)})"
        return f"~ {self.step} {self.field}: {_show(self.before)} → {_show(self.after)}"


def diff_decisions(
    before_verdict: Verdict,
    before_steps: list[DecisionStep],
    after_verdict: Verdict,
    after_steps: list[DecisionStep],
) -> list[Change]:
    changes: list[Change] = []
    if before_verdict != after_verdict:
        changes.append(Change("verdict", before=before_verdict.value, after=after_verdict.value))
    old = {s.id: _flatten(s.model_dump(mode="json")) for s in before_steps}
    new = {s.id: _flatten(s.model_dump(mode="json")) for s in after_steps}
    for step_id in sorted(old.keys() - new.keys()):
        changes.append(Change("removed", step=step_id, before=old[step_id]))
    for step_id in sorted(new.keys() - old.keys()):
        changes.append(Change("added", step=step_id, after=new[step_id]))
    for step_id in sorted(old.keys() & new.keys()):
        for field in sorted(old[step_id].keys() | new[step_id].keys()):
            was, now = old[step_id].get(field), new[step_id].get(field)
            if was != now:
                changes.append(Change("changed", step_id, field, was, now))
    return changes


def _flatten(document: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"approval": {"required": 2}} → {"approval.required": 2}: field-level changes."""
    flat: dict[str, Any] = {}
    for key, value in document.items():
        path = f"{prefix}{key}"
        # A target and an approval read as one thing each: "2 approvals incl. duty-officer".
        if isinstance(value, dict) and value and key not in ("target", "approval"):
            flat.update(_flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def _summary(flat: dict[str, Any]) -> str:
    approval = _approval(flat.get("approval") or {})
    return f"{flat.get('adapter')} {flat.get('action')} {_show(flat.get('target'))}, {approval}"


def _approval(approval: dict[str, Any]) -> str:
    required = approval.get("required", 0)
    if not required:
        return "automatic"
    roles = "|".join(approval.get("roles") or []) or "any approver"
    text = f"{required} approval(s) from {roles}"
    if approval.get("must_include_roles"):
        text += f" incl. {'|'.join(approval['must_include_roles'])}"
    return f"{text}, {approval.get('timeout_s')} s then {approval.get('on_timeout')}"


def _show(value: Any) -> str:
    if isinstance(value, dict) and "required" in value and "on_timeout" in value:
        return _approval(value)
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "{}"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)
