"""Identity revocation over LDAP: disable a shared service account in a directory.

One strategy per directory: `lock` sets ppolicy's pwdAccountLockedTime to the permanent
value, `groups` takes the account out of every group, `move` renames it into a disabled
OU. Each operation reads the account, then converges it to a target state (disabled for
apply, the recorded prior state for rollback), so a retried call changes nothing twice.
Verify reads the directory back and, when the account's own password is known, proves a
bind as the account is refused (or works again after a rollback).

This module is the adapter itself; the pieces live beside it: `ldap_directory` (the
inventory record), `ldap_client` (connections and calls), `ldap_strategies` (what each
strategy reads and writes). ldap3 is synchronous: each call runs in one worker thread
with its own connection.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from adapters.base import PermanentAdapterError
from adapters.identity.ldap_client import admin_connection, probe_bind
from adapters.identity.ldap_directory import STRATEGIES, LdapDirectory, Strategy
from adapters.identity.ldap_strategies import (
    ACCOUNT_STRATEGIES,
    EMPTY_MEMBER,
    LOCK_ATTRIBUTE,
    PERMANENT_LOCK,
    Account,
    converge,
)
from adapters.identity.systems import check_action, names
from contracts.adapter import Capabilities, Plan, Receipt, StepCommand, Verification

# The names this module defined before it was split, still importable from here.
__all__ = [
    "EMPTY_MEMBER",
    "LOCK_ATTRIBUTE",
    "PERMANENT_LOCK",
    "STRATEGIES",
    "SUPPORTED_ACTIONS",
    "LdapAdapter",
    "LdapDirectory",
    "Strategy",
]

SUPPORTED_ACTIONS = ("deny",)
_IDENTITY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
T = TypeVar("T")


class LdapAdapter:
    """Adapter `ldap`: action `deny` on target `{"identity": ..., "system": ...}`."""

    name = "ldap"

    def __init__(self, directories: Mapping[str, LdapDirectory]) -> None:
        self._directories = dict(directories)

    def _account(
        self, target: Mapping[str, Any], state: Mapping[str, Any] | None = None
    ) -> Account:
        system, identity = target.get("system"), target.get("identity")
        if not isinstance(system, str) or system not in self._directories:
            known = names(self._directories)
            raise PermanentAdapterError(f"no LDAP directory {system!r} is configured ({known})")
        if not isinstance(identity, str) or not _IDENTITY.match(identity):
            raise PermanentAdapterError(f"target identity {identity!r} is not an account name")
        directory = self._directories[system]
        # A receipt names the strategy it was made with, even if the config changed since.
        kind = (state or {}).get("strategy", directory.strategy)
        if kind not in ACCOUNT_STRATEGIES:
            raise PermanentAdapterError(f"receipt names unknown strategy {kind!r}")
        return ACCOUNT_STRATEGIES[kind](directory, identity)

    def _check(self, command: StepCommand) -> Account:
        check_action(self.name, command, SUPPORTED_ACTIONS)
        return self._account(command.target)

    def validate(self, command: StepCommand) -> None:
        """The checks `plan` makes before it reads the target, and nothing else: no I/O.

        Raises PermanentAdapterError saying why this adapter would refuse the step; used
        by `bulkhead policy check` to catch such steps before a policy is merged."""
        self._check(command)

    @staticmethod
    async def _run(account: Account, work: Callable[[Any], T]) -> T:
        def call() -> T:
            with admin_connection(account.directory) as connection:
                return work(connection)

        return await asyncio.to_thread(call)

    async def plan(self, command: StepCommand) -> Plan:
        account = self._check(command)
        before = await self._run(account, account.read)
        after = account.disabled(before)
        texts = [change.text for change in account.changes(before, after)]
        return Plan(
            adapter=self.name,
            summary=f"disable {account.identity} on {account.directory.system} ({account.kind})",
            changes=texts or [f"no change: {account.dn} is already disabled"],
            before=before,
            after=after,
        )

    async def apply(self, command: StepCommand, *, key: str) -> Receipt:
        account = self._check(command)

        def work(connection: Any) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
            before = account.read(connection)
            after = account.disabled(before)
            return before, after, converge(connection, account, before, after)

        before, after, done = await self._run(account, work)
        return Receipt(
            adapter=self.name,
            key=key,
            target=dict(command.target),
            action=command.action,
            applied=True,
            before=before,
            after=after,
            detail="; ".join(done) or "already disabled, nothing changed",
        )

    async def verify(self, receipt: Receipt) -> Verification:
        account = self._account(receipt.target, receipt.after)
        expected = receipt.after
        if any(key not in expected for key in account.needs):
            raise PermanentAdapterError("receipt records no state to verify against")
        observed = await self._run(account, account.read)
        want = account.bind_expected(expected)
        bind = "not checked"
        if want is not None:
            bind = await asyncio.to_thread(probe_bind, account.directory, account.identity)
        problems = []
        if not account.matches(observed, expected):
            problems.append(
                f"directory reads {_describe(observed)}, expected {_describe(expected)}"
            )
        if bind in {"accepted", "rejected"} and (bind == "accepted") != want:
            problems.append(f"a bind as {account.dn} was {bind}")
        return Verification(
            ok=not problems,
            observed={**observed, "bind": bind},
            detail="; ".join(problems) or f"directory reads {_describe(observed)}; bind {bind}",
        )

    async def rollback(self, receipt: Receipt) -> Receipt:
        target = receipt.before
        account = self._account(receipt.target, target or receipt.after)
        if not receipt.applied or any(key not in target for key in account.needs):
            return receipt.model_copy(update={"applied": False, "detail": "nothing to undo"})

        def work(connection: Any) -> tuple[dict[str, Any], list[str]]:
            current = account.read(connection)
            return current, converge(connection, account, current, target)

        current, done = await self._run(account, work)
        return receipt.model_copy(
            update={
                "applied": False,
                "before": current,
                "after": target,
                "detail": "; ".join(done) or "already in its prior state, nothing changed",
            }
        )

    async def capabilities(self) -> Capabilities:
        systems = ", ".join(f"{d.system} ({d.strategy})" for d in self._directories.values())
        return Capabilities(
            adapter=self.name,
            usable=bool(self._directories),
            actions=list(SUPPORTED_ACTIONS),
            detail=f"directories: {systems}" if systems else "no LDAP directory configured",
        )


def _describe(state: Mapping[str, Any]) -> str:
    shown = {k: v for k, v in state.items() if k not in {"strategy", "bind"}}
    return ", ".join(f"{key}={value}" for key, value in shown.items())
