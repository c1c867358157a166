"""What the identity adapters do alike: read a system's inventory record, find the system
a step names, and refuse an action they do not offer.

Config mistakes are ValueErrors (a loader catches one type); a step that names something
unknown is a PermanentAdapterError (no retry can help).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, TypeVar

from adapters.base import PermanentAdapterError
from adapters.secrets import SecretRef
from contracts.adapter import LAB_ENDPOINT, StepCommand

# Keys every inventory system record carries; accepted so the whole record can be passed.
SYSTEM_KEYS = frozenset({"description", "adapter", "zone", "revocation"})

S = TypeVar("S")


def check_keys(system: str, config: Mapping[str, Any], known: frozenset[str]) -> None:
    unknown = sorted(set(config) - known - SYSTEM_KEYS)
    if unknown:
        raise ValueError(f"systems.{system}: unknown key(s) {unknown} (known: {sorted(known)})")


def lab_or(endpoint: str, url: str | None, where: str) -> str:
    """`endpoint`, or for "lab" the lab's own `url`; `where` names the key in messages."""
    if endpoint != LAB_ENDPOINT:
        return endpoint
    if url is None:
        raise ValueError(f"{where} is 'lab' but no lab URL was given")
    return url


def http_endpoint(system: str, config: Mapping[str, Any], url: str | None) -> str:
    """The record's `endpoint` ("lab", the default, or an http(s) URL), without a final /."""
    key = f"systems.{system}.endpoint"
    endpoint = lab_or(str(config.get("endpoint", LAB_ENDPOINT)), url, key)
    if not endpoint.startswith(("http://", "https://")):
        raise ValueError(f"{key}: {endpoint!r} is not an http(s) URL")
    return endpoint.rstrip("/")


def token_ref(system: str, config: Mapping[str, Any], secrets_dir: Path | None) -> SecretRef:
    """The management token named by `token_file` or `token_env` (one is required)."""
    ref = SecretRef.from_config(dict(config), "token", base=secrets_dir)
    if ref.env is None and ref.file is None:
        raise ValueError(f"systems.{system}: set token_file or token_env")
    return ref


def timeout_of(system: str, config: Mapping[str, Any]) -> float:
    value = config.get("timeout_s", 5.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"systems.{system}.timeout_s must be a positive number")
    return float(value)


def names(systems: Collection[str]) -> str:
    """The configured systems, for messages and capabilities."""
    return ", ".join(sorted(systems)) or "none"


def system_for(target: Mapping[str, Any], systems: Mapping[str, S], kind: str) -> S:
    """The system `target["system"]` names; `kind` ("SCIM", "Vault") is for the message."""
    system = target.get("system")
    if not isinstance(system, str) or system not in systems:
        raise PermanentAdapterError(
            f"no {kind} system is known for target {dict(target)!r} (known: {names(systems)})"
        )
    return systems[system]


def check_action(adapter: str, command: StepCommand, supported: tuple[str, ...]) -> None:
    if command.action not in supported:
        raise PermanentAdapterError(
            f"{adapter} adapter supports {supported}, not {command.action!r}"
        )
