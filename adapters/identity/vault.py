"""Identity revocation on Vault/OpenBao: cut a shared account off, for good.

Action `deny` on target `{"identity": <userpass user>, "system": <inventory id>}`:

1. rotate the account's userpass password to a random value nobody keeps, first, so no
   new login can happen while the rest runs;
2. revoke, by accessor, every live token of the identity (see `vault_session.belongs`);
   a second round catches a token minted by one of them in the meantime;
3. revoke every lease under the configured prefixes (`sys/leases/revoke-prefix`).

None of it can be undone: revoked tokens and leases are gone and the old password is
lost. Rollback therefore changes nothing and says so; the inventory marks the system
irreversible, so the policy asks for approval before the step. Receipts record accessors
and lease ids (handles that need privileges to use), never token values or passwords.

This module is the adapter itself; `vault_server` reads the inventory record and
`vault_session` talks to the server. hvac is synchronous, so each operation runs as one
blocking function in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from adapters.base import PermanentAdapterError
from adapters.identity import systems
from adapters.identity.vault_server import (
    DEFAULT_LEASE_PREFIXES,
    PLAIN_NAME,
    VaultServer,
    probe_password,
)
from adapters.identity.vault_session import VaultSession, in_session
from contracts.adapter import Capabilities, Plan, Receipt, StepCommand, Verification

# The names this module defined before it was split, still importable from here.
__all__ = ["DEFAULT_LEASE_PREFIXES", "SUPPORTED_ACTIONS", "VaultAdapter", "VaultServer"]

SUPPORTED_ACTIONS = ("deny",)
# Rounds of "list the account's tokens, revoke them": a token one of them mints while a
# round runs is caught by the next.
_TOKEN_ROUNDS = 3
T = TypeVar("T")


def _identity(target: Mapping[str, Any]) -> str:
    identity = target.get("identity")
    if not isinstance(identity, str) or not PLAIN_NAME.fullmatch(identity):
        raise PermanentAdapterError(
            f"vault step needs target.identity, a plain account name (got {dict(target)!r})"
        )
    return identity


class VaultAdapter:
    """Adapter `vault`: action `deny` irreversibly revokes a shared account's access."""

    name = "vault"

    def __init__(self, servers: Mapping[str, VaultServer]) -> None:
        self._servers = dict(servers)

    def _server(self, target: Mapping[str, Any]) -> VaultServer:
        return systems.system_for(target, self._servers, "Vault")

    def _check(self, command: StepCommand) -> tuple[VaultServer, str]:
        systems.check_action(self.name, command, SUPPORTED_ACTIONS)
        return self._server(command.target), _identity(command.target)

    def validate(self, command: StepCommand) -> None:
        """The checks `plan` makes before it reads the target, and nothing else: no I/O.

        Raises PermanentAdapterError saying why this adapter would refuse the step; used
        by `bulkhead policy check` to catch such steps before a policy is merged."""
        self._check(command)

    @staticmethod
    async def _run(server: VaultServer, work: Callable[[VaultSession], T]) -> T:
        return await asyncio.to_thread(in_session, server, work)

    async def plan(self, command: StepCommand) -> Plan:
        server, identity = self._check(command)

        def look(session: VaultSession) -> tuple[list[str], list[str]]:
            session.require_user(identity)
            leases = [
                lease for p in server.prefixes_for(identity) for lease in session.leases_under(p)
            ]
            return session.tokens_of(identity), leases

        accessors, leases = await self._run(server, look)
        return Plan(
            adapter=self.name,
            summary=f"irreversibly revoke {identity} on {server.system}",
            changes=[
                f"rotate the auth/{server.auth_mount} password of {identity} to a random value "
                "nobody keeps (irreversible)",
                f"revoke {len(accessors)} live token(s) by accessor",
                *(
                    f"revoke leases under {p} ({_count(leases, p)} now)"
                    for p in server.prefixes_for(identity)
                ),
            ],
            before={"accessors": accessors, "leases": leases},
            after={"revoked": True},
        )

    async def apply(self, command: StepCommand, *, key: str) -> Receipt:
        server, identity = self._check(command)

        def revoke(session: VaultSession) -> tuple[list[str], list[str]]:
            session.require_user(identity)
            session.rotate_password(identity)  # first: no new login from here on
            prefixes = server.prefixes_for(identity)
            leases = [lease for p in prefixes for lease in session.leases_under(p)]
            revoked: list[str] = []
            for _ in range(_TOKEN_ROUNDS):
                found = session.tokens_of(identity)
                if not found:
                    break
                for accessor in found:
                    session.revoke_accessor(accessor)
                revoked += found
            for prefix in prefixes:
                session.revoke_prefix(prefix)
            return sorted(set(revoked)), leases

        accessors, leases = await self._run(server, revoke)
        detail = (
            f"revoked {len(accessors)} token(s) and {len(leases)} lease(s); password rotated"
            if accessors or leases
            else f"nothing left to revoke for {identity} (no live token or lease); "
            "password re-randomized"
        )
        return Receipt(
            adapter=self.name,
            key=key,
            target=dict(command.target),
            action=command.action,
            applied=True,
            before={"accessors": accessors, "leases": leases},
            after={"revoked": True},
            detail=f"{detail}; irreversible",
        )

    async def verify(self, receipt: Receipt) -> Verification:
        server = self._server(receipt.target)
        identity = _identity(receipt.target)
        recorded = [str(a) for a in receipt.before.get("accessors", [])]
        password = probe_password(server, identity)

        def observe(session: VaultSession) -> dict[str, Any]:
            observed: dict[str, Any] = {
                "recorded_accessors_alive": [a for a in recorded if session.token_info(a)],
                "live_tokens": session.tokens_of(identity),
                "leases": [
                    lease
                    for p in server.prefixes_for(identity)
                    for lease in session.leases_under(p)
                ],
            }
            if password is not None:
                observed["probe_login"] = (
                    "refused" if session.login_refused(identity, password) else "accepted"
                )
            return observed

        observed = await self._run(server, observe)
        problems = [
            f"{name}: {value}" for name, value in observed.items() if value and value != "refused"
        ]
        return Verification(
            ok=not problems,
            observed=observed,
            detail="; ".join(problems)
            or f"no token, lease or login of {identity} remains on {server.system}",
        )

    async def rollback(self, receipt: Receipt) -> Receipt:
        self._server(receipt.target)
        return receipt.model_copy(
            update={
                "detail": "irreversible: revoked tokens and leases cannot be restored and the "
                "old password is gone; issue the account new credentials by hand",
            }
        )

    async def capabilities(self) -> Capabilities:
        return Capabilities(
            adapter=self.name,
            usable=bool(self._servers),
            actions=list(SUPPORTED_ACTIONS),
            detail="IRREVERSIBLE: deny rotates the password and revokes tokens and leases; "
            f"rollback cannot undo it. {len(self._servers)} Vault system(s): "
            + systems.names(self._servers),
        )


def _count(leases: list[str], prefix: str) -> int:
    return sum(1 for lease in leases if lease.startswith(prefix))
