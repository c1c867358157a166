"""A step as a duty officer reads it: "set rtu-e01 to local_manual; was remote".

Reads the step's JSON as the API shows it (`contracts.incident.StepView`): its adapter,
action, target and args, the dry run made for its approvers (`preview`, a
`contracts.adapter.Plan`), the state recorded before apply (`rollback_intent`), the
receipt and the value read back (`verification`). Every adapter/action pair the shipped
policy emits has its own sentence; anything else gets a generic one. Nothing here raises:
a sentence that cannot be made from an odd payload falls back to the generic one, because
a page that fails to render hides every other step with it.

Stdlib only, on plain dicts: the CLI's light commands import it (#18).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Step = Mapping[str, Any]

SERVICE_ADAPTERS = ("modbus", "opcua", "http")
IDENTITY_ADAPTERS = ("ldap", "scim", "vault")

# The address a device resolved to and a zone's blocks, which the step's target does not
# carry: the nftables plan's or receipt's drop set of one side (`<tag>_s4`, `<tag>_s6`:
# adapters/network/ruleset.py), else the plan's summary (adapters/network/topology.py).
_SIDE_SET = re.compile(r"_s[46]$")
_DEVICE = re.compile(r"device \S+ \(([^)]+)\)")
_ZONE = re.compile(r"zone \S+ \(([^)]+)\)")
_HOST_PREFIX = re.compile(r"/(32|128)$")


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _target_text(target: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in target.items()) or "(no target)"


def generic(step: Step) -> str:
    """`adapter action target`, with the dry run's own summary when there is one."""
    adapter = step.get("adapter", "?")
    action = step.get("action", "?")
    said = f"{action} {_target_text(_dict(step.get('target')))} ({adapter})"
    summary = _dict(step.get("preview")).get("summary")
    return f"{said}: {summary}" if summary else said


def _before(step: Step) -> Mapping[str, Any]:
    """What the target held before: the dry run's read, else the state recorded before
    apply (an automatic step has no dry run), else the receipt's."""
    for found in (
        _dict(step.get("preview")).get("before"),
        step.get("rollback_intent"),
        _dict(step.get("receipt")).get("before"),
    ):
        if isinstance(found, Mapping) and found:
            return found
    return {}


def _set_mode(step: Step) -> str:
    target = _dict(step.get("target"))
    asset = target["asset"]
    mode = (
        _dict(step.get("args")).get("mode") or _dict(step.get("preview")).get("after", {})["mode"]
    )
    was = _before(step).get("mode")
    said = f"set {asset} to {mode}"
    if was is None:
        return said
    return f"{said}; already {mode}" if was == mode else f"{said}; was {was}"


def _points(step: Step) -> list[str]:
    """The enforcement points (firewalls) the rules go to, by id."""
    for holder in (step.get("preview"), step.get("receipt")):
        points = _dict(_dict(holder).get("after")).get("points")
        if isinstance(points, list) and points:
            return [str(_dict(p).get("id")) for p in points]
    intent = _dict(step.get("rollback_intent")).get("points")
    return [str(p) for p in intent] if isinstance(intent, Mapping) else []


def _cut(step: Step, summary: re.Pattern[str]) -> str:
    """ " (198.18.40.20)": the addresses the step cuts off, or "" when nothing says."""
    for holder in (step.get("preview"), step.get("receipt")):
        sets = _dict(_dict(holder).get("after")).get("sets")
        if isinstance(sets, Mapping):
            nets = [str(n) for name, v in sets.items() if _SIDE_SET.search(name) for n in v]
            if nets:
                return f" ({', '.join(_HOST_PREFIX.sub('', n) for n in nets)})"
    found = summary.search(str(_dict(step.get("preview")).get("summary") or ""))
    return f" ({_HOST_PREFIX.sub('', found.group(1))})" if found else ""


def _network(step: Step) -> str:
    target = _dict(step.get("target"))
    args = _dict(step.get("args"))
    summary = str(_dict(step.get("preview")).get("summary") or "")
    verb = "quarantine" if step.get("action") == "contain" else "block"
    if "device" in target:
        what = f"{verb} {target['device']}{_cut(step, _DEVICE)}"
    elif "zone" in target:
        what = f"isolate zone {target['zone']}{_cut(step, _ZONE)}"
    elif "zones" in target and isinstance(target["zones"], list):
        what = f"deny traffic between zones {' and '.join(map(str, target['zones']))}"
    elif summary:
        # A connection or a net: the plan's own words name it exactly ("deny the
        # connection from 198.18.40.77 to 198.18.20.10 tcp dport 502 in zone(s) energy").
        what = summary.split(" at ", 1)[0].split(" except ", 1)[0]
    else:
        what = f"{step.get('action')} {_target_text(target)}"
    points = _points(step)
    said = f"{what} at {', '.join(points)} (nftables)" if points else f"{what} (nftables)"
    allow = args.get("allow")
    if isinstance(allow, list) and allow:
        said += f", keeping {', '.join(map(str, allow))} open"
    return said


def _irreversible(step: Step) -> bool:
    return step.get("reversible", True) is False


def _identity(step: Step) -> str:
    target = _dict(step.get("target"))
    said = f"disable account {target['identity']} in {target['system']}"
    if step.get("adapter") == "vault":
        before = _dict(_dict(step.get("preview")).get("before"))
        tokens, leases = before.get("accessors"), before.get("leases")
        if isinstance(tokens, list) and isinstance(leases, list):
            said += f", revoking {len(tokens)} token(s) and {len(leases)} lease(s)"
    if _irreversible(step):
        said += f" ({step.get('adapter')}: cannot be undone)"
    return said


def _sentence_for(step: Step) -> Callable[[Step], str]:
    adapter, action = step.get("adapter"), step.get("action")
    target = _dict(step.get("target"))
    if adapter in SERVICE_ADAPTERS and action == "set" and "asset" in target:
        return _set_mode
    if adapter == "nftables" and action in ("contain", "deny"):
        return _network
    if action == "deny" and "identity" in target and "system" in target:
        return _identity
    return generic


def plan_in_words(step: Step) -> str:
    """One sentence saying what the step does (or did) to its target."""
    try:
        return _sentence_for(step)(step)
    except Exception:  # noqa: BLE001 - an odd payload gets the generic sentence, never an error
        try:
            return generic(step)
        except Exception:  # noqa: BLE001 - not even a mapping: say so rather than fail
            return f"a step Bulkhead cannot describe: {step!r}"[:200]


def _at_points(observed: Mapping[str, Any]) -> str | None:
    """nftables observes per enforcement point: "in place at city-gw (12 packets dropped)"."""
    if not observed or not all(
        isinstance(v, Mapping) and "present" in v for v in observed.values()
    ):
        return None
    parts = []
    for point, seen in observed.items():
        state = "in place" if seen["present"] else "absent"
        dropped = seen.get("dropped_packets")
        counted = f" ({dropped} packets dropped)" if seen["present"] and dropped is not None else ""
        parts.append(f"{state} at {point}{counted}")
    return "rules " + ", ".join(parts)


def _readback(verification: Mapping[str, Any]) -> str:
    observed = _dict(verification.get("observed"))
    ok = verification.get("ok") is True
    detail = str(verification.get("detail") or "")
    if "mode" in observed:
        said = f"mode {observed['mode']}"
        return f"{said} ({detail})" if ok else f"{said}, NOT as planned: {detail}"
    points = _at_points(observed)
    if points and ok:
        return points
    return f"as planned: {detail}" if ok else f"NOT as planned: {detail}"


def readback_in_words(step: Step) -> str | None:
    """What was read back from the target after apply (or rollback); None before any read."""
    verification = step.get("verification")
    if not isinstance(verification, Mapping):
        return None
    try:
        return _readback(verification)
    except Exception:  # noqa: BLE001 - an odd payload is shown raw, never an error
        return str(verification)[:200]


def grouped_in_words(steps: Iterable[Step]) -> list[str]:
    """One sentence per step, except that one account disabled on several systems is one
    sentence ("disable account svc-scada in ldap-city, scim-idp, vault-city (vault: cannot
    be undone)"): the approver decides about the account, not about each directory."""
    sentences: list[str] = []
    accounts: dict[str, list[Step]] = {}
    order: list[str | Step] = []
    for step in steps:
        target = _dict(step.get("target")) if isinstance(step, Mapping) else {}
        if _sentence_for(step) is _identity and isinstance(target.get("identity"), str):
            name = target["identity"]
            if name not in accounts:
                accounts[name] = []
                order.append(name)
            accounts[name].append(step)
        else:
            order.append(step)
    for item in order:
        if not isinstance(item, str):
            sentences.append(plan_in_words(item))
            continue
        held = accounts[item]
        if len(held) == 1:
            sentences.append(plan_in_words(held[0]))
            continue
        systems = ", ".join(str(_dict(s.get("target")).get("system")) for s in held)
        lasting = sorted({str(s.get("adapter")) for s in held if _irreversible(s)})
        said = f"disable account {item} in {systems}"
        if lasting:
            said += f" ({', '.join(lasting)}: cannot be undone)"
        sentences.append(said)
    return sentences
