"""Every adapter the worker drives, built from the city inventory in one place.

An inventory record whose endpoint is "lab" (or that names none) means the lab's server
on this host. `Endpoints` is the one place that says where those servers are and where
relative credential file names resolve; outside the lab (settings.lab off) such records
are refused before any adapter is built (`require_endpoints`), so a production typo never
drives the lab's addresses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.base import Adapter
from adapters.identity.ldap import LdapAdapter, LdapDirectory
from adapters.identity.scim import ScimAdapter, ScimService
from adapters.identity.vault import VaultAdapter, VaultServer
from adapters.network.nft import Nft
from adapters.network.nftables import NftablesAdapter
from adapters.service.http import HttpFallbackAdapter, HttpSwitch
from adapters.service.modbus import ModbusFallbackAdapter
from adapters.service.opcua import OpcUaFallbackAdapter, OpcUaNode
from orchestrator.config import Settings
from orchestrator.wiring.inventory import Inventory, MissingEndpointError

# Where the lab's substation serves its OPC UA nodes (orchestrator/lab/substation.py).
OPCUA_PATH = "/bulkhead/substation/"


def opcua_url(host: str, port: int) -> str:
    return f"opc.tcp://{host}:{port}{OPCUA_PATH}"


@dataclass(frozen=True)
class Endpoints:
    """What endpoint "lab" means for each kind of target, and where secret files are."""

    modbus_host: str
    modbus_port: int
    opcua_url: str
    http_url: str
    ldap_url: str
    scim_url: str
    vault_url: str
    gateway_netns: str
    secrets_dir: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> Endpoints:
        host = settings.lab_host
        return cls(
            modbus_host=host,
            modbus_port=settings.lab_modbus_port,
            opcua_url=opcua_url(host, settings.lab_opcua_port),
            http_url=f"http://{host}:{settings.lab_http_port}",
            ldap_url=f"ldap://{host}:{settings.lab_ldap_port}",
            scim_url=f"http://{host}:{settings.lab_scim_port}/v2",
            vault_url=f"http://{host}:{settings.lab_vault_port}",
            gateway_netns=settings.lab_gateway_netns,
            secrets_dir=secrets_dir(settings),
        )


def secrets_dir(settings: Settings) -> Path:
    """Where an inventory record's relative credential file names resolve: the setting;
    else, in the lab, the directory the lab writes its generated credentials to; else
    `<state_dir>/secrets`."""
    if settings.secrets_dir is not None:
        return settings.secrets_dir
    return settings.lab_secrets_dir if settings.lab else settings.state_dir / "secrets"


def require_endpoints(settings: Settings, inventory: Inventory) -> None:
    """Outside the lab every record names its target: the adapters would otherwise aim a
    record without one at the lab on this host, and a production typo would drive nothing.

    Raises MissingEndpointError naming each such record."""
    if settings.lab:
        return
    unset = inventory.unset_endpoints()
    if unset:
        raise MissingEndpointError(unset)


def build_adapters(settings: Settings, inventory: Inventory) -> dict[str, Adapter]:
    """The worker's adapters, after `require_endpoints`."""
    require_endpoints(settings, inventory)
    nft = Nft(timeout_s=settings.nft_timeout_s)
    return adapters_for(inventory, Endpoints.from_settings(settings), nft=nft)


def adapters_for(
    inventory: Inventory, endpoints: Endpoints, *, nft: Nft | None = None
) -> dict[str, Adapter]:
    """Every adapter of one inventory, by adapter name (the policy's `adapter` field)."""
    devices = inventory.modbus_devices(
        lab_host=endpoints.modbus_host, lab_port=endpoints.modbus_port
    )
    topology = inventory.network_topology(lab_gateway_netns=endpoints.gateway_netns)
    return {
        "modbus": ModbusFallbackAdapter(devices),
        "nftables": NftablesAdapter(topology, nft=nft),
        **_service_adapters(inventory, endpoints),
        **_identity_adapters(inventory, endpoints),
    }


def _service_adapters(inventory: Inventory, endpoints: Endpoints) -> dict[str, Adapter]:
    """Assets whose device type speaks OPC UA or HTTP (`device_types.<type>.protocol`)
    and that carry an `opcua` / `http` record."""
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
                    lab_endpoint=endpoints.opcua_url,
                    secrets_base=endpoints.secrets_dir,
                )
            else:
                switches[uid] = HttpSwitch.from_config(
                    uid,
                    record,
                    modes=modes,
                    safe_mode=safe_mode,
                    lab_url=endpoints.http_url,
                    secrets_base=endpoints.secrets_dir,
                )
        except ValueError as exc:
            raise ValueError(f"inventory assets.{uid}.{protocol}: {exc}") from exc
    return {"opcua": OpcUaFallbackAdapter(nodes), "http": HttpFallbackAdapter(switches)}


def _identity_adapters(inventory: Inventory, endpoints: Endpoints) -> dict[str, Adapter]:
    """Systems with a `connection` record: a directory, SCIM service or Vault server."""
    secrets = endpoints.secrets_dir
    directories: dict[str, LdapDirectory] = {}
    services: dict[str, ScimService] = {}
    servers: dict[str, VaultServer] = {}
    systems: dict[str, Any] = inventory.data.get("systems", {})
    for system_id, system in systems.items():
        connection = system.get("connection")
        if not isinstance(connection, dict):
            continue  # known to the policy, but Bulkhead cannot reach it: steps fail closed
        adapter = system.get("adapter")
        try:
            if adapter == "ldap":
                directories[system_id] = LdapDirectory.from_config(
                    system_id, connection, url=endpoints.ldap_url, secrets_dir=secrets
                )
            elif adapter == "scim":
                services[system_id] = ScimService.from_config(
                    system_id, connection, url=endpoints.scim_url, secrets_dir=secrets
                )
            elif adapter == "vault":
                servers[system_id] = VaultServer.from_config(
                    system_id, connection, url=endpoints.vault_url, secrets_dir=secrets
                )
        except ValueError as exc:
            raise ValueError(f"inventory systems.{system_id}.connection: {exc}") from exc
    return {
        "ldap": LdapAdapter(directories),
        "scim": ScimAdapter(services),
        "vault": VaultAdapter(servers),
    }
