"""`bulkhead adapters check`: can each configured adapter act here, and if not, why.

Exit 1 when one cannot, so a deployment script notices a worker that would only plan
(e.g. the nftables adapter without root or without `nft`), and when an inventory record
names no endpoint outside the lab (each such record is listed; a worker refuses it too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.config import Settings

if TYPE_CHECKING:
    from orchestrator.wiring.inventory import MissingEndpointError


def _report_unset(exc: MissingEndpointError, *, as_json: bool) -> None:
    """Each record without an endpoint by id and adapter; the adapters are not built."""
    if as_json:
        unset = [
            {"kind": u.kind, "id": u.record_id, "adapter": u.adapter, "missing": u.key}
            for u in exc.unset
        ]
        print(json.dumps({"unset_endpoints": unset}, indent=2))
    print(f"error: {exc}", file=sys.stderr)


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from contracts.adapter import Capabilities  # noqa: PLC0415 - keeps --help fast
    from orchestrator.wiring.adapters import build_adapters  # noqa: PLC0415
    from orchestrator.wiring.inventory import Inventory, MissingEndpointError  # noqa: PLC0415

    try:
        adapters = build_adapters(settings, Inventory.load(settings.policy_dir))
    except MissingEndpointError as exc:
        _report_unset(exc, as_json=args.json)
        return 1

    async def gather() -> list[Capabilities]:
        return list(await asyncio.gather(*(a.capabilities() for a in adapters.values())))

    found = asyncio.run(gather())
    if args.json:
        print(json.dumps([c.model_dump() for c in found], indent=2))
    else:
        for caps in found:
            state = "usable" if caps.usable else "NOT USABLE"
            print(f"{caps.adapter:<10} {state:<11} actions {','.join(caps.actions)}")
            print(f"{'':<10} {caps.detail}")
        if any(c.adapter == "nftables" and not c.usable for c in found):
            print("network steps run in plan-only mode: plans show the rules, apply fails")
    return 0 if all(c.usable for c in found) else 1


def register(commands: Any) -> None:
    """Add `adapters check` to the `bulkhead` subcommand set."""
    adapters = commands.add_parser("adapters", help="the adapters this configuration builds")
    sub = adapters.add_subparsers(dest="adapters_command", required=True, metavar="COMMAND")
    check = sub.add_parser("check", help="whether each adapter can act here (exit 1 if not)")
    check.add_argument("--config", type=Path, help="TOML settings file")
    check.add_argument("--state-dir", type=Path, help="where state lives (default .bulkhead/)")
    check.add_argument("--json", action="store_true", help="print JSON")
    check.set_defaults(handler=_check)
