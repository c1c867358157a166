"""Identity adapters from the inventory's `systems`: each system with a `connection`
record becomes a directory, SCIM service or Vault server of its adapter.

Endpoint "lab" means the lab's server on this host (settings.lab_*_port); relative
credential files are read from the lab's secrets directory, so the lab and production
use the same records with different endpoints and secrets.
"""

from __future__ import annotations

from typing import Any

from adapters.base import Adapter
from adapters.identity.ldap import LdapAdapter, LdapDirectory
from adapters.identity.scim import ScimAdapter, ScimService
from adapters.identity.vault import VaultAdapter, VaultServer
from orchestrator.config import Settings
from orchestrator.wiring.inventory import Inventory


def lab_urls(settings: Settings) -> dict[str, str]:
    host = settings.lab_host
    return {
        "ldap": f"ldap://{host}:{settings.lab_ldap_port}",
        "scim": f"http://{host}:{settings.lab_scim_port}/v2",
        "vault": f"http://{host}:{settings.lab_vault_port}",
    }


def identity_adapters(settings: Settings, inventory: Inventory) -> dict[str, Adapter]:
    secrets_dir = settings.lab_secrets_dir
    urls = lab_urls(settings)
    directories: dict[str, LdapDirectory] = {}
    services: dict[str, ScimService] = {}
    servers: dict[str, VaultServer] = {}
    systems: dict[str, Any] = inventory.data.get("systems", {})
    for system_id, system in systems.items():
        connection = system.get("connection")
        if not isinstance(connection, dict):
            continue  # known to the policy, but Bulkhead cannot reach it: steps fail closed
        adapter = system.get("adapter")
        where = f"systems.{system_id}.connection"
        try:
            if adapter == "ldap":
                directories[system_id] = LdapDirectory.from_config(
                    system_id, connection, url=urls["ldap"], secrets_dir=secrets_dir
                )
            elif adapter == "scim":
                services[system_id] = ScimService.from_config(
                    system_id, connection, url=urls["scim"], secrets_dir=secrets_dir
                )
            elif adapter == "vault":
                servers[system_id] = VaultServer.from_config(
                    system_id, connection, url=urls["vault"], secrets_dir=secrets_dir
                )
        except ValueError as exc:
            raise ValueError(f"inventory {where}: {exc}") from exc
    return {
        "ldap": LdapAdapter(directories),
        "scim": ScimAdapter(services),
        "vault": VaultAdapter(servers),
    }
