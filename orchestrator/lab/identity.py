"""The lab's identity servers: slapd (when installed), a SCIM service provider and an
OpenBao dev server, each seeded with the inventory's shared service accounts, with the
same password in the directory and the secrets store (as a shared account would have).

Credentials go to <state_dir>/lab/secrets (0600); the inventory's `connection` records
name those files, so the adapters find them without any secret in configuration.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from orchestrator.config import Settings
from orchestrator.lab import ldap
from orchestrator.lab.ldap import SlapdLab
from orchestrator.lab.parts import stop_all
from orchestrator.lab.scim import ScimLab
from orchestrator.lab.vault import VaultLab
from orchestrator.wiring.inventory import Inventory


@dataclass
class IdentityLab:
    settings: Settings
    accounts: list[str]
    slapd: SlapdLab | None = None
    scim: ScimLab | None = None
    vault: VaultLab | None = None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_inventory(cls, settings: Settings) -> IdentityLab:
        identities = Inventory.load(settings.policy_dir).data.get("identities", {})
        return cls(settings, sorted(identities))

    async def start(self) -> None:
        """Start what can run here; a server that cannot start is noted, not fatal."""
        directory = self.settings.lab_dir
        host = self.settings.lab_host
        passwords = {account: secrets.token_urlsafe(18) for account in self.accounts}
        reason = ldap.unavailable()
        if reason is None:
            self.slapd = SlapdLab(
                directory, host=host, port=self.settings.lab_ldap_port, accounts=passwords
            )
        else:
            self.notes.append(f"LDAP off: {reason}")
        self.scim = ScimLab(
            host=host, port=self.settings.lab_scim_port, directory=directory, accounts=self.accounts
        )
        self.vault = VaultLab(
            host=host, port=self.settings.lab_vault_port, directory=directory, accounts=passwords
        )
        try:
            for server in (self.slapd, self.scim, self.vault):
                if server is not None:
                    await server.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        servers = {"OpenBao": self.vault, "SCIM": self.scim, "slapd": self.slapd}
        await stop_all({n: srv.stop if srv is not None else None for n, srv in servers.items()})

    def banner(self) -> str:
        parts = []
        if self.slapd is not None:
            parts.append(f"LDAP {self.slapd.url}")
        if self.scim is not None:
            parts.append(f"SCIM {self.scim.url}")
        if self.vault is not None:
            parts.append(f"OpenBao {self.vault.url}")
        accounts = ", ".join(self.accounts)
        line = (
            f"{'; '.join(parts)}; accounts {accounts}; secrets in {self.settings.lab_secrets_dir}"
        )
        return "; ".join([line, *self.notes])
