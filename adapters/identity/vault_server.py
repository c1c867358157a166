"""One Vault/OpenBao server from the inventory, and what its record may say.

`VaultServer.from_config` reads an inventory record (config mistakes are ValueErrors, so
a loader catches one type): where the server is, the token that manages it, the userpass
mount of the shared accounts, which lease prefixes a revocation sweeps, and where an
account's old password is kept for verify.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.identity import systems
from adapters.secrets import SecretRef

# The leases of the account's own logins; a system adds its secrets engines' prefixes.
DEFAULT_LEASE_PREFIXES = ("auth/{auth_mount}/login/{identity}",)
_KEYS = frozenset(
    {
        "endpoint",
        "token_env",
        "token_file",
        "auth_mount",
        "lease_prefixes",
        "probe_password_file",
        "timeout_s",
    }
)
# A name goes into API paths and lease prefixes: "" or "a/.." would widen a revoke-prefix
# to other accounts, so only plain names are accepted.
PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")


@dataclass(frozen=True)
class VaultServer:
    """A Vault/OpenBao server holding shared accounts, and the token to manage it (needs
    sudo on `auth/token/accessors` and `sys/leases/*`, and write on the userpass users)."""

    system: str
    url: str
    token: SecretRef
    auth_mount: str = "userpass"
    lease_prefixes: tuple[str, ...] = DEFAULT_LEASE_PREFIXES
    # A path template with {identity}: the account's old password, which verify tries to
    # log in with and expects refused. Optional: production rarely keeps such a copy.
    probe_password_file: str | None = None
    timeout_s: float = 5.0

    @classmethod
    def from_config(
        cls,
        system: str,
        config: Mapping[str, Any],
        *,
        url: str | None = None,
        secrets_dir: Path | None = None,
    ) -> VaultServer:
        """An inventory record: `{"endpoint": "lab" | "https://vault:8200", "token_file":
        "vault-token" | "token_env": "VAR", "auth_mount": "userpass", "lease_prefixes":
        ["auth/{auth_mount}/login/{identity}", "pki/issue/{identity}"],
        "probe_password_file": "identities/{identity}.vault-password", "timeout_s": 5}`.
        `url` is what endpoint "lab" (the default) means; relative files are read from
        `secrets_dir`."""
        systems.check_keys(system, config, _KEYS)
        endpoint = systems.http_endpoint(system, config, url)
        token = systems.token_ref(system, config, secrets_dir)
        auth_mount = str(config.get("auth_mount", "userpass")).strip("/")
        if not PLAIN_NAME.fullmatch(auth_mount):
            raise ValueError(f"systems.{system}.auth_mount: {auth_mount!r} is not a mount name")
        return cls(
            system=system,
            url=endpoint,
            token=token,
            auth_mount=auth_mount,
            lease_prefixes=_prefixes(system, config.get("lease_prefixes")),
            probe_password_file=_probe_file(system, config, secrets_dir),
            timeout_s=systems.timeout_of(system, config),
        )

    @property
    def client_timeout(self) -> int:
        # Whole seconds: what hvac documents (and its stubs type) for `timeout`.
        return math.ceil(self.timeout_s)

    def prefixes_for(self, identity: str) -> list[str]:
        # The trailing slash keeps `svc-scada` from also matching `svc-scada2`'s leases.
        return [
            p.format(identity=identity, auth_mount=self.auth_mount).strip("/") + "/"
            for p in self.lease_prefixes
        ]


def _prefixes(system: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_LEASE_PREFIXES
    key = f"systems.{system}.lease_prefixes"
    if not isinstance(value, list | tuple) or not all(isinstance(p, str) for p in value):
        raise ValueError(f"{key} must be a list of strings")
    for prefix in value:
        # Without {identity} a prefix would revoke the leases of every account.
        if "{identity}" not in prefix:
            raise ValueError(f"{key}: {prefix!r} lacks the {{identity}} placeholder")
        try:
            prefix.format(identity="x", auth_mount="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"{key}: {prefix!r} has an unknown placeholder: {exc}") from exc
    return tuple(value)


def _probe_file(system: str, config: Mapping[str, Any], base: Path | None) -> str | None:
    value = config.get("probe_password_file")
    if value is None:
        return None
    if not isinstance(value, str) or "{identity}" not in value:
        raise ValueError(f"systems.{system}.probe_password_file needs an {{identity}} template")
    path = Path(value)
    return str(base / path) if base is not None and not path.is_absolute() else value


def probe_password(server: VaultServer, identity: str) -> str | None:
    """The account's old password, when the record says where it is kept."""
    if server.probe_password_file is None:
        return None
    path = Path(server.probe_password_file.format(identity=identity))
    return SecretRef(file=path).read()
