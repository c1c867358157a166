"""Service fallback adapters from the inventory: assets whose device type speaks OPC UA
or HTTP (`device_types.<type>.protocol`) and that carry an `opcua` / `http` record.

Endpoint "lab" means the lab's simulator on this host; relative credential files are
read from the lab's secrets directory, as for the identity adapters.
"""

from __future__ import annotations

from typing import Any

from adapters.base import Adapter
from adapters.service.http import HttpFallbackAdapter, HttpSwitch
from adapters.service.opcua import OpcUaFallbackAdapter, OpcUaNode
from orchestrator.config import Settings
from orchestrator.lab.substation import endpoint_url
from orchestrator.wiring.inventory import Inventory


def service_adapters(settings: Settings, inventory: Inventory) -> dict[str, Adapter]:
    secrets_dir = settings.lab_secrets_dir
    device_types: dict[str, Any] = inventory.data.get("device_types", {})
    nodes: dict[str, OpcUaNode] = {}
    switches: dict[str, HttpSwitch] = {}
    for uid, asset in inventory.assets.items():
        device_type = device_types.get(asset.get("type", ""), {})
        protocol = device_type.get("protocol")
        record = asset.get(protocol) if protocol in ("opcua", "http") else None
        if not isinstance(record, dict):
            continue
        modes = device_type.get("modes", {})
        safe_mode = device_type.get("safe_mode")
        try:
            if protocol == "opcua":
                nodes[uid] = OpcUaNode.from_config(
                    uid,
                    record,
                    modes=modes,
                    safe_mode=safe_mode,
                    lab_endpoint=endpoint_url(settings.lab_host, settings.lab_opcua_port),
                    secrets_base=secrets_dir,
                )
            else:
                switches[uid] = HttpSwitch.from_config(
                    uid,
                    record,
                    modes=modes,
                    safe_mode=safe_mode,
                    lab_url=f"http://{settings.lab_host}:{settings.lab_http_port}",
                    secrets_base=secrets_dir,
                )
        except ValueError as exc:
            raise ValueError(f"inventory assets.{uid}.{protocol}: {exc}") from exc
    return {"opcua": OpcUaFallbackAdapter(nodes), "http": HttpFallbackAdapter(switches)}
