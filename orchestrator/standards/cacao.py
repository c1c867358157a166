"""An incident's containment as a CACAO Security Playbooks v2.0 playbook (OASIS CS01).

What the workflow does, written as CACAO workflow steps (§4):

    start ─▶ parallel (when there are two or more steps: the workflow runs every ready
             step at once) ─▶ one branch per containment step, each with its own end:
    [approval gate: action, manual; names the roles; timeout = the approval timeout]
        on_success ─▶ apply: action; the OpenC2 command (openc2-http) where a profile has
                      one (orchestrator/standards/openc2.py), `manual` otherwise
            on_success ─▶ revert: `delay` = the lease; the workflow undoes the step when
                          the lease ends (extend moves it, release brings it forward)
            on_failure ─▶ roll back: the undo at once (a failed verification or guard)
        on_failure ─▶ end (denied, or no answer by the deadline)

An irreversible step has neither revert nor roll back; a step without a lease is held
until a responder releases it. Ids are derived from the incident's (uuid5), so the same
incident exports the same playbook; `modified` is its latest audit entry.
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from contracts.decision import DecisionStep
from contracts.incident import IncidentView, StepView
from orchestrator.standards import openc2
from orchestrator.standards.openc2 import Addresses, Equivalent

SPEC_VERSION = "cacao-2.0"
# Ours, not CACAO's: §10.10 reserves aa7caf3a-d55a-4e9a-b34e-056215fba56a for ids made
# from a playbook's name and playbook_types, and forbids it to producers that do otherwise.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:bulkhead:cacao")
CREATED_BY = f"identity--{uuid.uuid5(NAMESPACE, 'bulkhead')}"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TIMED_OUT = {"deny": "denied", "escalate": "escalated to a person", "approve": "approved"}
MAX_FINDINGS_NAMED = 5


def playbook(
    view: IncidentView, *, addresses: Addresses | None = None, api_url: str = "http://127.0.0.1"
) -> dict[str, Any]:
    """The incident's containment as a CACAO 2.0 playbook (a JSON object)."""
    return _Playbook(view, addresses or Addresses(), api_url).build()


def stamp(moment: datetime) -> str:
    """A CACAO timestamp: UTC, `Z`, exactly three digits of milliseconds (§3.1)."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class _Playbook:
    def __init__(self, view: IncidentView, addresses: Addresses, api_url: str) -> None:
        self.view = view
        self.addresses = addresses
        self.api_url = api_url
        self.workflow: dict[str, dict[str, Any]] = {}
        self.agents: dict[str, dict[str, Any]] = {}
        self.targets: dict[str, dict[str, Any]] = {}
        self.activities: set[str] = set()
        steps = view.decision.steps if view.decision else []
        self.decided: dict[str, DecisionStep] = {s.id: s for s in steps}

    def make_id(self, kind: str, *parts: str) -> str:
        """`kind--uuid`, from the incident and the parts. §10.10: step objects MUST use
        UUIDv4, others SHOULD; a v4 UUID's 122 bits are the producer's to choose, and
        these are a hash's, so that the same incident exports the same ids."""
        name = "\n".join((self.view.incident_id, kind, *parts))
        return f"{kind}--{uuid.UUID(bytes=uuid.uuid5(NAMESPACE, name).bytes, version=4)}"

    def build(self) -> dict[str, Any]:
        view = self.view
        start = self.make_id("start")
        end = self.make_id("end")
        self.workflow[start] = {"type": "start", "name": "findings received"}
        first = self.make_id("parallel") if len(view.steps) > 1 else None
        if first is not None:
            self.workflow[first] = {}  # filled below; listed right after the start
        heads = [self.branch(step, None if first else end) for step in view.steps]
        if not heads:
            heads = [self.nothing_to_contain(end)]
        if first is not None:
            self.workflow[first] = {
                "type": "parallel",
                "name": "the steps, carried out together",
                "description": "The workflow carries out every step that is ready at once; "
                "each waits for its own approval.",
                "next_steps": heads,
                "on_completion": end,
            }
        self.workflow[start]["on_completion"] = first or heads[0]
        self.workflow[end] = {"type": "end", "name": "containment over"}
        created, modified = self.times()
        document: dict[str, Any] = {
            "type": "playbook",
            "spec_version": SPEC_VERSION,
            "id": f"playbook--{uuid.uuid5(NAMESPACE, view.incident_id)}",
            "name": f"Bulkhead containment of {view.incident_id}",
            "description": self.summary(),
            "playbook_types": ["mitigation"] if view.steps else ["investigation"],
            "playbook_activities": sorted(self.activities),
            "created_by": CREATED_BY,
            "created": stamp(created),
            "modified": stamp(modified),
            "labels": ["bulkhead", f"status:{view.status.value}"],
            "workflow_start": start,
            "workflow": self.workflow,
        }
        if self.agents:
            document["agent_definitions"] = self.agents
        if self.targets:
            document["target_definitions"] = self.targets
        return document

    # --- one branch per step -------------------------------------------------------------

    def branch(self, step: StepView, end: str | None) -> str:
        """The step's gate, apply, revert and roll back, in that order; its first id."""
        end = end or self.make_id("end", step.id)
        found = openc2.equivalent(self.view.incident_id, step, self.addresses)
        undo = self.undo_commands(step, found)
        agent = self.consumer() if found else self.responders()
        target = self.target(step)
        apply_id = self.make_id("action", step.id, "apply")
        apply: dict[str, Any] = {
            "type": "action",
            "name": f"{step.id}: apply",
            "description": self.step_summary(step),
            "commands": self.apply_commands(step, found),
            "agent": agent,
            **({"targets": [target]} if target else {}),
            "on_success": end,
            "on_failure": end,
        }
        branch: dict[str, dict[str, Any]] = {apply_id: apply}
        if step.required_approvals > 0:
            branch = {self.make_id("action", step.id, "approval"): self.gate(step, apply_id, end)}
            branch[apply_id] = apply
        later: dict[str, Any] = {"agent": agent, **({"targets": [target]} if target else {})}
        if undo and step.lease_s:
            apply["on_success"] = self.make_id("action", step.id, "revert")
            branch[apply["on_success"]] = {
                "type": "action",
                "name": f"{step.id}: revert when the lease ends",
                "description": f"The lease of {step.lease_s} s: the workflow undoes the step "
                "when it ends; `bulkhead extend` moves the end, `bulkhead release` brings it "
                "forward.",
                "delay": step.lease_s * 1000,
                "commands": undo,
                **later,
                "on_completion": end,
            }
        if undo:
            apply["on_failure"] = self.make_id("action", step.id, "rollback")
            branch[apply["on_failure"]] = {
                "type": "action",
                "name": f"{step.id}: roll back",
                "description": "A failed verification, or an essential service harmed after "
                "the step (the guard): the workflow undoes the step at once and escalates.",
                "commands": undo,
                **later,
                "on_completion": end,
            }
        self.workflow.update(branch)
        self.workflow[end] = {"type": "end", "name": f"{step.id}: done"}
        return next(iter(branch))

    def gate(self, step: StepView, apply_id: str, end: str) -> dict[str, Any]:
        """The approval gate: a manual command naming the roles; times out at the deadline."""
        roles = " or ".join(step.approval_roles) or "any role that may approve"
        text = (
            f"Approve or deny step {step.id} of incident {self.view.incident_id}: it needs "
            f"{step.required_approvals} approval(s) from distinct principals holding {roles}"
        )
        if step.must_include_roles:
            text += f", one of them holding {' and '.join(step.must_include_roles)}"
        incident = self.view.incident_id
        text += (
            f". Approve: bulkhead approve {incident} {step.id} --reason WHY. "
            f"Deny: bulkhead deny {incident} {step.id} --reason WHY."
        )
        gate: dict[str, Any] = {
            "type": "action",
            "name": f"{step.id}: approval",
            "description": self.gate_summary(step),
            "commands": [{"type": "manual", "command": text}],
            "agent": self.approvers(step),
        }
        decided = self.decided.get(step.id)
        if decided is not None:
            gate["timeout"] = decided.approval.timeout_s * 1000
        return {**gate, "on_success": apply_id, "on_failure": end}

    def nothing_to_contain(self, end: str) -> str:
        action = self.make_id("action", "review")
        decision = self.view.decision
        verdict = decision.verdict.value if decision else "not decided yet"
        self.activities.add("analyze-collected-data")
        self.workflow[action] = {
            "type": "action",
            "name": "review the findings",
            "description": "The policy chose no containment step.",
            "commands": [
                {
                    "type": "manual",
                    "command": f"Review incident {self.view.incident_id}: the policy's "
                    f"verdict is {verdict}, with no containment step.",
                    "playbook_activity": "analyze-collected-data",
                }
            ],
            "agent": self.responders(),
            "on_completion": end,
        }
        return action

    # --- commands ------------------------------------------------------------------------

    def apply_commands(self, step: StepView, found: Equivalent | None) -> list[dict[str, Any]]:
        if found is None:
            self.activities.add("configure-systems")
            text = _manual_apply(step)
            return [{"type": "manual", "command": text, "playbook_activity": "configure-systems"}]
        self.activities.add(found.activity)
        return [self.openc2_command(c, found, found.activity) for c in found.apply]

    def undo_commands(self, step: StepView, found: Equivalent | None) -> list[dict[str, Any]]:
        if not step.reversible:
            return []
        if found is not None and found.undo:
            self.activities.add("revert-system")
            return [self.openc2_command(c, found, "revert-system") for c in found.undo]
        self.activities.add("revert-system")
        return [
            {"type": "manual", "command": _manual_undo(step), "playbook_activity": "revert-system"}
        ]

    def openc2_command(
        self, command: openc2.Command, found: Equivalent, activity: str
    ) -> dict[str, Any]:
        target = next(iter(command["target"]))
        return {
            "type": "openc2-http",
            "description": f"OpenC2 {command['action']} {target} ({found.profile.upper()})",
            "command": f"POST {openc2.OPENC2_PATH} HTTP/1.1",
            "content_b64": openc2.content_b64(command),
            "headers": {"Content-Type": [openc2.OPENC2_CONTENT_TYPE]},
            "playbook_activity": activity,
        }

    # --- agents and targets --------------------------------------------------------------

    def consumer(self) -> str:
        """The OpenC2 consumer the openc2-http commands are posted to (http-api, §7)."""
        agent = self.make_id("http-api", "openc2")
        host, port = _host_port(self.api_url)
        self.agents[agent] = {
            "type": "http-api",
            "name": "Bulkhead OpenC2 consumer",
            "description": f"POST {self.api_url.rstrip('/')}{openc2.OPENC2_PATH} "
            "(OpenC2 over HTTPS; SLPF and ER profiles)",
            "address": {_address_kind(host): [host]},
            "port": port,
            "category": ["orchestrator"],
        }
        return agent

    def responders(self) -> str:
        agent = self.make_id("group", "responders")
        self.agents[agent] = {
            "type": "group",
            "name": "Bulkhead responders",
            "description": "The people handling the incident; where Bulkhead runs, its "
            "adapter does the step and a responder confirms it.",
        }
        return agent

    def approvers(self, step: StepView) -> str:
        roles = sorted(step.approval_roles)
        must = sorted(step.must_include_roles)
        agent = self.make_id("group", "approvers", ",".join(roles), ",".join(must))
        named = " or ".join(roles) or "any role that may approve"
        description = f"Principals holding {named}"
        if must:
            description += f"; each gate needs one holding {' and '.join(must)}"
        self.agents[agent] = {
            "type": "group",
            "name": f"Bulkhead approvers ({named})",
            "description": description + " (four-eyes: distinct principals).",
        }
        return agent

    def target(self, step: StepView) -> str | None:
        """A net-address target for a step on one asset whose address is known."""
        asset = step.target.get("device", step.target.get("asset"))
        address = self.addresses.assets.get(str(asset)) if asset is not None else None
        if not address:
            return None
        target = self.make_id("net-address", str(asset))
        self.targets[target] = {
            "type": "net-address",
            "name": str(asset),
            "address": {_address_kind(address): [address]},
        }
        return target

    # --- words ---------------------------------------------------------------------------

    def summary(self) -> str:
        view = self.view
        text = (
            f"Containment of incident {view.incident_id} (entity {view.entity}), "
            f"now {view.status.value}."
        )
        if view.decision is not None:
            decision = view.decision
            text += (
                f" Verdict {decision.verdict.value} (decision {decision.decision_id}, policy "
                f"{decision.policy_version})"
            )
            text += f": {'; '.join(decision.reasons)}." if decision.reasons else "."
        titles = [f.finding_info.title for f in view.findings[:MAX_FINDINGS_NAMED]]
        if titles:
            text += f" Findings: {'; '.join(titles)}."
        return text

    def step_summary(self, step: StepView) -> str:
        text = f"Step {step.id}: {step.action} by adapter {step.adapter}, now {step.state.value}."
        if step.lease_expires_at:
            text += f" Lease ends {step.lease_expires_at}."
        if not step.reversible:
            text += " Cannot be undone."
        if step.error:
            text += f" Error: {step.error}."
        if step.receipt is not None and step.receipt.detail:
            text += f" Receipt: {step.receipt.detail}."
        return text

    def gate_summary(self, step: StepView) -> str:
        text = f"{step.required_approvals} approval(s) needed"
        if step.approvals:
            given = ", ".join(f"{a.principal} ({', '.join(a.roles)})" for a in step.approvals)
            text += f"; given by {given}"
        if step.denial is not None:
            text += f"; denied by {step.denial.principal}: {step.denial.reason}"
        if step.approval_deadline:
            text += f"; deadline {step.approval_deadline}"
        outcome = TIMED_OUT.get(step.on_timeout, step.on_timeout)
        text += f"; unanswered by then, the step is {outcome}."
        return text

    def times(self) -> tuple[datetime, datetime]:
        """`created`: the first finding (or entry); `modified`: the latest audit entry."""
        moments = [EPOCH + timedelta(milliseconds=f.time) for f in self.view.findings]
        for entry in self.view.audit:
            try:
                at = datetime.fromisoformat(entry.at)
            except ValueError:
                continue
            moments.append(at if at.tzinfo else at.replace(tzinfo=UTC))
        if not moments:
            return EPOCH, EPOCH
        return min(moments), max(moments)


def _manual_apply(step: StepView) -> str:
    if "asset" in step.target and "mode" in step.args:
        return (
            f"Switch asset {step.target['asset']} to its safe mode {step.args['mode']} "
            f"(Bulkhead adapter {step.adapter}), and confirm on the device that it runs so."
        )
    args = f" with {_pairs(step.args)}" if step.args else ""
    return (
        f"{step.action} {_pairs(step.target)}{args} (Bulkhead adapter {step.adapter}), "
        "and confirm it on the target."
    )


def _manual_undo(step: StepView) -> str:
    intent = step.rollback_intent or {}
    simple = intent and len(intent) <= 4 and all(_scalar(v) for v in intent.values())
    restore = _pairs(intent) if simple else "the state recorded before the step"
    return (
        f"Undo step {step.id} on {_pairs(step.target)}: restore {restore} "
        f"(Bulkhead adapter {step.adapter}, rollback), and confirm it on the target."
    )


def _pairs(values: dict[str, Any]) -> str:
    """key=value, without quotes (a manual `command` with quotes SHOULD be base64, §5)."""
    shown = []
    for key, value in values.items():
        if isinstance(value, list) and all(_scalar(v) for v in value):
            shown.append(f"{key}={'+'.join(str(v) for v in value)}")
        elif _scalar(value):
            shown.append(f"{key}={value}")
    return ", ".join(shown) or "its target"


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


def _host_port(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    default = "443" if parts.scheme == "https" else "80"
    return parts.hostname or "127.0.0.1", str(parts.port or default)


def _address_kind(host: str) -> str:
    """The key of an agent-target `address` (§7): ipv4, ipv6 or dname."""
    try:
        return f"ipv{ipaddress.ip_address(host).version}"
    except ValueError:
        return "dname"
