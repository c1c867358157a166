"""Is this a CACAO 2.0 playbook a CACAO consumer can run? `bulkhead playbook check FILE`.

No package ships the CACAO 2.0 JSON schemas and the official ones
(oasis-open/cacao-json-schemas) are only on GitHub, so the rules here are written from the
specification's required properties and MUSTs (CACAO Security Playbooks v2.0, CS01, as
the schemas' descriptions quote them), plus what a schema cannot say: every step an
`on_*`, `next_steps` or `cases` names exists, and every agent and target a step names is
defined. Each problem is a JSON pointer (RFC 6901) and a sentence.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

SPEC_VERSION = "cacao-2.0"
# §10.10 identifier: object-type--UUID (RFC 4122, versions 1 to 5).
IDENTIFIER = re.compile(
    r"^(?P<kind>[a-z][a-z0-9-]+[a-z0-9])--[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-5][0-9a-fA-F]{3}"
    r"-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"
)
# timestamp: RFC 3339, UTC with `Z`; §3.1 asks `created` and `modified` to the millisecond.
TIMESTAMP = re.compile(
    r"^[0-9]{4}-(0[1-9]|1[012])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]"
    r":([0-5][0-9]|60)(\.(?P<fraction>[0-9]+))?Z$"
)
# §3.1: the playbook's required properties.
REQUIRED = (
    "type",
    "spec_version",
    "id",
    "name",
    "created_by",
    "created",
    "modified",
    "workflow_start",
    "workflow",
)
# §4: each step type and the properties it requires besides `type`.
STEP_REQUIRED: dict[str, tuple[str, ...]] = {
    "start": (),
    "end": (),
    "action": ("commands", "agent"),
    "playbook-action": ("playbook_id",),
    "parallel": ("next_steps",),
    "if-condition": ("condition", "on_true"),
    "while-condition": ("condition", "on_true"),
    "switch-condition": ("switch", "cases"),
}
POINTERS = ("on_completion", "on_success", "on_failure", "on_true", "on_false")
DEFINITIONS = {"agent_definitions": "agent", "target_definitions": "target"}


@dataclass(frozen=True)
class Problem:
    # Where, as an RFC 6901 JSON pointer ("" is the whole document); for a missing
    # property, where it belongs.
    pointer: str
    message: str

    def line(self) -> str:
        return f"{self.pointer or '(document)'}: {self.message}"


def pointer(*parts: str | int) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def check(document: Any) -> list[Problem]:
    """Every problem found in `document` (a parsed JSON value); [] for a valid playbook."""
    if not isinstance(document, dict):
        return [Problem("", "a CACAO playbook is a JSON object")]
    return list(_playbook(document))


def _playbook(doc: dict[str, Any]) -> Iterator[Problem]:
    for name in REQUIRED:
        if name not in doc:
            yield Problem(pointer(name), "required property missing (CACAO 2.0 §3.1)")
    if "type" in doc and doc["type"] != "playbook":
        yield Problem(pointer("type"), f"must be 'playbook', not {doc['type']!r}")
    if "spec_version" in doc and doc["spec_version"] != SPEC_VERSION:
        yield Problem(
            pointer("spec_version"), f"must be {SPEC_VERSION!r}, not {doc['spec_version']!r}"
        )
    for name, kind in (("id", "playbook"), ("created_by", "identity")):
        if name in doc:
            yield from _identifier(doc[name], pointer(name), kind)
    for name in ("workflow_start", "workflow_exception"):
        if name in doc:
            yield from _identifier(doc[name], pointer(name))
    yield from _times(doc)
    agents = yield from _definitions(doc, "agent_definitions")
    targets = yield from _definitions(doc, "target_definitions")
    workflow = doc.get("workflow")
    if "workflow" in doc and not isinstance(workflow, dict):
        yield Problem(pointer("workflow"), "must be an object of workflow steps by id")
    if not isinstance(workflow, dict):
        return
    yield from _workflow(doc, workflow, agents, targets)


def _identifier(value: Any, where: str, kind: str | None = None) -> Iterator[Problem]:
    match = IDENTIFIER.match(value) if isinstance(value, str) else None
    if match is None:
        yield Problem(where, f"{value!r} is not an identifier: object-type--UUID (§10.10)")
    elif kind is not None and match["kind"] != kind:
        yield Problem(where, f"must be a {kind} id ({kind}--UUID), not {match['kind']}--")


def _times(doc: dict[str, Any]) -> Iterator[Problem]:
    parsed: dict[str, datetime] = {}
    for name in ("created", "modified", "valid_from", "valid_until"):
        if name not in doc:
            continue
        value = doc[name]
        match = TIMESTAMP.match(value) if isinstance(value, str) else None
        if match is None:
            yield Problem(pointer(name), f"{value!r} is not a timestamp: yyyy-mm-ddThh:mm:ss[.s+]Z")
            continue
        if name in ("created", "modified") and len(match["fraction"] or "") != 3:
            yield Problem(pointer(name), "must be given to the millisecond: three digits (§3.1)")
        try:
            parsed[name] = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            yield Problem(pointer(name), f"{value!r} is not a date and time")
    if "created" in parsed and "modified" in parsed and parsed["modified"] < parsed["created"]:
        yield Problem(pointer("modified"), "must be later than or equal to created (§3.1)")
    since, until = parsed.get("valid_from"), parsed.get("valid_until")
    if since is not None and until is not None and until <= since:
        yield Problem(pointer("valid_until"), "must be later than valid_from (§3.1)")


def _definitions(doc: dict[str, Any], name: str) -> Generator[Problem, None, set[str]]:
    """Agents or targets (§7.1: `type` and `name` required); returns the ids defined."""
    table = doc.get(name, {})
    if not isinstance(table, dict):
        yield Problem(pointer(name), "must be an object of agent-target objects by id")
        return set()
    for key, value in table.items():
        where = pointer(name, key)
        yield from _identifier(key, where)
        if not isinstance(value, dict):
            yield Problem(where, "must be an agent-target object")
            continue
        for required in ("type", "name"):
            if not isinstance(value.get(required), str):
                yield Problem(f"{where}/{required}", "required property missing (§7.1)")
        match = IDENTIFIER.match(key)
        if match and isinstance(value.get("type"), str) and match["kind"] != value["type"]:
            yield Problem(pointer(name, key, "type"), f"{value['type']!r} differs from its id")
    return set(table)


def _workflow(
    doc: dict[str, Any], workflow: dict[str, Any], agents: set[str], targets: set[str]
) -> Iterator[Problem]:
    kinds: dict[str, str] = {}
    for key, step in workflow.items():
        kind = yield from _step(key, step)
        if kind is None:
            continue
        kinds[key] = kind
        yield from _links(key, step, workflow)
        if kind == "action":
            yield from _action(key, step, agents, targets)
    start = doc.get("workflow_start")
    if isinstance(start, str) and start not in workflow:
        yield Problem(pointer("workflow_start"), f"{start!r} is not a step of the workflow")
    elif isinstance(start, str) and kinds.get(start) != "start":
        yield Problem(pointer("workflow_start"), "must name a start step (§3.1)")
    exception = doc.get("workflow_exception")
    if isinstance(exception, str) and exception not in workflow:
        yield Problem(pointer("workflow_exception"), f"{exception!r} is not a step")
    present = set(kinds.values())
    for needed in ("start", "end"):
        if needed not in present:
            yield Problem(pointer("workflow"), f"has no {needed} step (§3.1)")
    if not present & {"action", "playbook-action"}:
        yield Problem(pointer("workflow"), "has no action or playbook-action step (§3.1)")


def _step(key: str, step: Any) -> Generator[Problem, None, str | None]:
    """A step's id, type and required properties (§4); returns its type if it is known."""
    where = pointer("workflow", key)
    yield from _identifier(key, where)
    if not isinstance(step, dict):
        yield Problem(where, "must be a workflow step object")
        return None
    kind = step.get("type")
    if not isinstance(kind, str) or kind not in STEP_REQUIRED:
        yield Problem(pointer("workflow", key, "type"), f"unknown step type {kind!r} (§4)")
        return None
    match = IDENTIFIER.match(key)
    if match and match["kind"] != kind:
        yield Problem(where, f"a {kind} step's id must start {kind}--")
    for required in STEP_REQUIRED[kind]:
        if required not in step:
            yield Problem(f"{where}/{required}", f"required property of {kind} missing (§4)")
    return kind


def _links(key: str, step: dict[str, Any], workflow: dict[str, Any]) -> Iterator[Problem]:
    """§4.1: each pointer names a step of this workflow; on_completion excludes the others;
    start and end steps use only what they may."""
    kind = step["type"]
    named = [(p, step[p]) for p in POINTERS if p in step]
    steps = step.get("next_steps", [])
    if isinstance(steps, list):
        named += [(f"next_steps/{i}", s) for i, s in enumerate(steps)]
    cases = step.get("cases", {})
    if isinstance(cases, dict):
        named += [(f"cases/{pointer(c)[1:]}", s) for c, s in cases.items()]
    for where, target in named:
        at = f"{pointer('workflow', key)}/{where}"
        if not isinstance(target, str) or target not in workflow:
            yield Problem(at, f"{target!r} is not a step of the workflow")
    if "on_completion" in step and {"on_success", "on_failure"} & set(step):
        yield Problem(pointer("workflow", key), "on_completion excludes on_success/on_failure")
    forbidden = {"start": ("on_success", "on_failure"), "end": ("on_completion", *POINTERS[1:3])}
    for name in forbidden.get(kind, ()):
        if name in step:
            yield Problem(pointer("workflow", key, name), f"a {kind} step must not use {name}")
    if kind == "parallel" and isinstance(steps, list) and len(steps) < 2:
        yield Problem(pointer("workflow", key, "next_steps"), "must list two or more steps")
    for name in ("delay", "timeout"):
        value = step.get(name)
        if name in step and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            yield Problem(pointer("workflow", key, name), "must be a whole number of ms")


def _action(
    key: str, step: dict[str, Any], agents: set[str], targets: set[str]
) -> Iterator[Problem]:
    agent = step.get("agent")
    if "agent" in step and agent not in agents:
        yield Problem(pointer("workflow", key, "agent"), f"{agent!r} is not in agent_definitions")
    listed = step.get("targets", [])
    for i, target in enumerate(listed if isinstance(listed, list) else []):
        if target not in targets:
            yield Problem(
                pointer("workflow", key, "targets", i), f"{target!r} is not in target_definitions"
            )
    commands = step.get("commands")
    if "commands" in step and (not isinstance(commands, list) or not commands):
        yield Problem(pointer("workflow", key, "commands"), "must list one or more commands")
        return
    for i, command in enumerate(commands or []):
        yield from _command(command, pointer("workflow", key, "commands", i))


def _command(command: Any, where: str) -> Iterator[Problem]:
    """§5: `type` required; manual needs command or command_b64; openc2-http a POST start
    line and an OpenC2 command (action and target, Language Specification §3.3.1)."""
    if not isinstance(command, dict) or not isinstance(command.get("type"), str):
        yield Problem(where, "a command needs a 'type' (§5)")
        return
    kind = command["type"]
    if kind == "manual" and "command" not in command and "command_b64" not in command:
        yield Problem(where, "a manual command needs 'command' or 'command_b64'")
    if kind != "openc2-http":
        return
    for required in ("command", "content_b64"):
        if required not in command:
            yield Problem(f"{where}/{required}", "required property of openc2-http missing")
    line = command.get("command")
    if isinstance(line, str) and not re.fullmatch(r"POST \S+ HTTP/\d(\.\d)?", line):
        yield Problem(f"{where}/command", "must be an HTTP start line: POST <target> HTTP/1.1")
    if "content_b64" in command:
        problem = _openc2(command["content_b64"])
        if problem:
            yield Problem(f"{where}/content_b64", problem)


def _openc2(content: Any) -> str | None:
    try:
        decoded = json.loads(base64.b64decode(str(content), validate=True))
    except (binascii.Error, ValueError):
        return "is not a base64-encoded JSON OpenC2 command"
    if not isinstance(decoded, dict) or not {"action", "target"} <= set(decoded):
        return "an OpenC2 command needs 'action' and 'target'"
    return None
