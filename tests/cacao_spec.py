"""The CACAO 2.0 specification's required properties of each object Bulkhead's export
uses, transcribed from the specification (no registry ships its JSON schemas): the
export's unit tests and the README's end-to-end export both hold documents to it."""

from __future__ import annotations

from typing import Any

# CACAO Security Playbooks v2.0: §3.1 playbook, §4 workflow steps, §5 commands, §7 agents
# and targets; the required properties of each object the export uses.
PLAYBOOK = {"type", "spec_version", "id", "name", "created_by", "created", "modified"}
PLAYBOOK |= {"workflow_start", "workflow"}
STEP = {"start": set(), "end": set(), "action": {"commands", "agent"}, "parallel": {"next_steps"}}
COMMAND = {"manual": {"command"}, "openc2-http": {"command", "content_b64"}}
AGENT_TARGET = {"type", "name"}
ADDRESSED = {"http-api", "net-address"}  # these also require `address`


def spec_problems(document: dict[str, Any]) -> list[str]:
    problems = [f"playbook lacks {p}" for p in sorted(PLAYBOOK - set(document))]
    for key, step in document["workflow"].items():
        problems += [f"{key} lacks {p}" for p in sorted(STEP[step["type"]] - set(step))]
        if not key.startswith(f"{step['type']}--"):
            problems.append(f"{key} is a {step['type']} step")
        for command in step.get("commands", []):
            missing = COMMAND[command["type"]] - set(command)
            problems += [f"{key} command lacks {p}" for p in sorted(missing)]
    for table in ("agent_definitions", "target_definitions"):
        for key, value in document.get(table, {}).items():
            needed = AGENT_TARGET | ({"address"} if value["type"] in ADDRESSED else set())
            problems += [f"{key} lacks {p}" for p in sorted(needed - set(value))]
    return problems
