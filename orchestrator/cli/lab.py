"""The lab as a plug-in: `bulkhead lab up` runs it alone, `bulkhead up` beside Bulkhead.

No production module imports the lab. It is found through the `bulkhead.lab` entry point
(pyproject.toml), and its simulators' packages come with the `lab` extra
(`pip install 'bulkhead[lab]'`), so a production install carries no simulator and
`bulkhead worker` runs without one.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from importlib.metadata import entry_points
from typing import Any, Protocol

from orchestrator.cli import options
from orchestrator.config import Settings

ENTRY_POINT_GROUP = "bulkhead.lab"
INSTALL_HINT = "pip install 'bulkhead[lab]'"

# The lab's servers, each with the setting that moves it (orchestrator/config.py).
LAB_SERVERS = (
    ("Modbus traffic controllers", "lab_modbus_port"),
    ("OPC UA substation (rtu-e01)", "lab_opcua_port"),
    ("HTTP city services", "lab_http_port"),
    ("LDAP directory (slapd)", "lab_ldap_port"),
    ("SCIM identity service", "lab_scim_port"),
    ("Vault (OpenBao)", "lab_vault_port"),
)


def _default(name: str) -> object:
    return Settings.model_fields[name].default


def _env(name: str) -> str:
    return f"BULKHEAD_{name.upper()}"


def lab_help() -> str:
    """Where the lab listens and what it names its namespaces, from the settings' defaults,
    for `bulkhead up --help` and `bulkhead lab up --help`: a port already taken on this
    host, or a namespace left over, is then found without reading the code."""
    prefix = _default("lab_netns_prefix")
    lines = [f"The lab's servers, on {_default('lab_host')} ({_env('lab_host')}):"]
    lines += [
        f"  {what:<29} port {_default(name)!s:<6} ({_env(name)})" for what, name in LAB_SERVERS
    ]
    lines += [
        f"  {'network namespaces (as root)':<29} {prefix}gw (the gateway) and {prefix}<zone>",
        f"  {'':<29} (prefix {prefix!r}, {_env('lab_netns_prefix')})",
    ]
    return "\n".join(lines)


class Lab(Protocol):
    """What Bulkhead needs of a lab: start it, stop it, say where its servers are."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def banner_lines(self) -> list[str]: ...


class LabUnavailableError(RuntimeError):
    """No lab is installed, or it cannot load (its extra is missing)."""


def load_lab(settings: Settings) -> Lab:
    """The installed lab, built for these settings; LabUnavailableError says how to get one."""
    found = entry_points(group=ENTRY_POINT_GROUP)
    if not found:
        raise LabUnavailableError(f"no lab is installed ({INSTALL_HINT}, or pass --no-lab)")
    entry = next(iter(found))
    try:
        factory = entry.load()
    except ImportError as exc:
        raise LabUnavailableError(
            f"the lab {entry.value!r} cannot load: {exc} ({INSTALL_HINT})"
        ) from exc
    lab: Lab = factory(settings)
    return lab


def register(commands: Any) -> None:
    lab = commands.add_parser("lab", help="the local lab of simulated city devices")
    lab_commands = lab.add_subparsers(dest="lab_command", required=True, metavar="COMMAND")
    lab_up = lab_commands.add_parser(
        "up",
        help="run the lab simulators in the foreground",
        epilog=lab_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.common(lab_up)
    lab_up.set_defaults(handler=_lab_up_command)


def _lab_up_command(_args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_lab_up(settings))


async def _lab_up(settings: Settings) -> int:
    from orchestrator.runtime import stop_event_on_signals  # noqa: PLC0415 - keeps --help fast

    stop = stop_event_on_signals()
    lab = load_lab(settings)
    await lab.start()
    print("\n".join(["Lab:", *lab.banner_lines(), "Ctrl-C stops"]), file=sys.stderr, flush=True)
    await _recheck_after_lab_start(settings)
    try:
        await stop.wait()
    finally:
        await lab.stop()
    return 0


async def _recheck_after_lab_start(settings: Settings) -> None:
    """A restarted lab comes back in its normal modes: incidents that hold a lab target
    verify it now. Without Temporal there is nothing to ask (the lab runs on its own)."""
    from orchestrator.temporal.client import connect  # noqa: PLC0415
    from orchestrator.temporal.recheck import recheck_held  # noqa: PLC0415

    try:
        client = await asyncio.wait_for(connect(settings), timeout=5)
    except (OSError, RuntimeError, TimeoutError) as exc:
        print(f"(no Temporal at {settings.temporal_address}: {exc}; no recheck)", file=sys.stderr)
        return
    asked = await recheck_held(client, settings, "lab started")
    print(f"asked {asked} incident(s) holding a step to verify it again", file=sys.stderr)
