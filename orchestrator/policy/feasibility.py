"""Can the decisions be carried out? Every step the policy emits for the cases and for the
inventory sweep is put to the adapter that would carry it out (planning.StepAdapters).

A step an adapter would refuse fails the check, naming the asset (or case), the step and
the adapter's own reason, so the mistake shows before a merge instead of in an incident.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from pydantic import ValidationError

from contracts.decision import Decision, DecisionStep
from orchestrator.policy.base import ENTRYPOINT
from orchestrator.policy.bundle import PolicyBundle
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.policy.errors import rego_error
from orchestrator.policy.models import ContainmentInput
from orchestrator.policy.planning import StepAdapters
from orchestrator.policy.problems import Problem
from orchestrator.policy.results import unexplained
from orchestrator.policy.sweep import SweptInput, sweep_inputs

# What the engine adds to the policy's object; the check needs only its steps.
_ENGINE_FIELDS = {"policy_version": "policy-check", "decision_id": "policy-check"}


def describe_step(step: DecisionStep) -> str:
    """`isolate:water (nftables contain zone=water)`: the step as a reader finds it."""
    target = " ".join(f"{k}={v}" for k, v in step.target.items())
    return f"{step.id} ({step.adapter} {step.action} {target})"


def steps_of(engine: EmbeddedEngine, policy_input: ContainmentInput) -> list[DecisionStep] | str:
    """The decision's steps, or why there is no valid decision (the engine would escalate)."""
    try:
        raw = engine.evaluate(ENTRYPOINT, policy_input.document())
    except RuntimeError as exc:
        return f"the policy fails: {rego_error(exc)}"
    if not isinstance(raw, dict):
        return f"{ENTRYPOINT} is undefined"
    try:
        steps = Decision.model_validate({**raw, **_ENGINE_FIELDS}).steps
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "/".join(map(str, first["loc"]))
        return f"the policy returns an invalid decision: {first['msg']} at {where}"
    silent = unexplained(steps)
    if silent:
        return f"the policy returns step(s) without a reason (`because`): {', '.join(silent)}"
    return steps


def case_step_problems(
    bundle: PolicyBundle, engine: EmbeddedEngine, adapters: StepAdapters
) -> list[Problem]:
    """Each step of each case's actual decision (a case that does not parse is the cases
    stage's to report)."""
    problems: list[Problem] = []
    for name, text in bundle.cases.items():
        try:
            case_input = ContainmentInput.model_validate(json.loads(text)["input"])
        except (ValueError, KeyError, TypeError):  # ValidationError is a ValueError
            continue
        steps = steps_of(engine, case_input)
        if isinstance(steps, str):
            problems.append(Problem(f"cases/{name}", steps))
            continue
        problems += [
            Problem(f"cases/{name}", f"{describe_step(step)}: {reason}")
            for step in steps
            if (reason := adapters.refusal(step)) is not None
        ]
    return problems


def _where(swept: list[SweptInput]) -> str:
    """`severity 4, 5, 6, 99 named by resource uid or ip`: which sweep inputs it came from."""
    by_naming: dict[str, list[int]] = defaultdict(list)
    for item in swept:
        by_naming[item.naming].append(item.severity_id)
    parts: dict[str, list[str]] = defaultdict(list)
    for naming, severities in by_naming.items():
        parts[", ".join(map(str, sorted(severities)))].append(naming)
    return "; ".join(
        f"severity {severities} named by {' or '.join(namings)}"
        for severities, namings in parts.items()
    )


def sweep_problems(
    inventory: dict[str, Any], engine: EmbeddedEngine, adapters: StepAdapters
) -> tuple[list[Problem], int]:
    """Problems of the sweep, one per subject, step and reason; and how many inputs ran."""
    found: dict[tuple[str, str], list[SweptInput]] = defaultdict(list)
    verdicts: dict[tuple[Any, ...], str | None] = {}  # one adapter question per distinct step
    count = 0
    for swept in sweep_inputs(inventory):
        count += 1
        steps = steps_of(engine, swept.policy_input)
        if isinstance(steps, str):
            found[swept.subject, steps].append(swept)
            continue
        for step in steps:
            key = (step.adapter, step.action, json.dumps([step.target, step.args], sort_keys=True))
            if key not in verdicts:
                verdicts[key] = adapters.refusal(step)
            if (reason := verdicts[key]) is not None:
                found[swept.subject, f"{describe_step(step)}: {reason}"].append(swept)
    problems = [
        Problem(f"sweep: {subject}", f"{message} (findings of {_where(swept)})")
        for (subject, message), swept in found.items()
    ]
    return problems, count
