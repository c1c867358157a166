"""Identity revocation over LDAP: disable a shared service account in a directory.

One strategy per directory: `lock` sets ppolicy's pwdAccountLockedTime to the permanent
value, `groups` takes the account out of every group, `move` renames it into a disabled
OU. Each operation reads the account, then converges it to a target state (disabled for
apply, the recorded prior state for rollback), so a retried call changes nothing twice.
Verify reads the directory back and, when the account's own password is known, proves a
bind as the account is refused (or works again after a rollback).

ldap3 is synchronous: each call runs in one worker thread with its own connection.
"""

from __future__ import annotations

import asyncio
import math
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast, get_args

from adapters.base import AdapterError, PermanentAdapterError, TransientAdapterError
from adapters.identity.systems import check_action, lab_or, names
from adapters.secrets import SecretRef
from contracts.adapter import Capabilities, Plan, Receipt, StepCommand, Verification

with warnings.catch_warnings():
    # ldap3 2.9.1 imports names that pyasn1 >= 0.6.1 deprecates (tagMap, typeMap); under
    # `filterwarnings = error` that warning would fail every importer.
    warnings.filterwarnings("ignore", r"(tagMap|typeMap) is deprecated", DeprecationWarning)
    import ldap3
    from ldap3.core.exceptions import (
        LDAPCommunicationError,
        LDAPException,
    )
    from ldap3.utils.conv import escape_filter_chars
    from ldap3.utils.dn import escape_rdn, to_dn

Strategy = Literal["lock", "groups", "move"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
SUPPORTED_ACTIONS = ("deny",)
LOCK_ATTRIBUTE = "pwdAccountLockedTime"
# ppolicy's "locked until an administrator unlocks it" value.
PERMANENT_LOCK = "000001010000Z"
# groupOfNames must keep a member: an empty DN holds the place of the last one removed.
EMPTY_MEMBER = ""
_IDENTITY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
_NO_SUCH_ATTRIBUTE, _VALUE_EXISTS, _NO_SUCH_OBJECT = 16, 20, 32
_INVALID_CREDENTIALS, _OBJECT_CLASS_VIOLATION = 49, 65
_TRANSIENT_RESULTS = frozenset({3, 51, 52})  # timeLimitExceeded, busy, unavailable
T = TypeVar("T")


@dataclass(frozen=True)
class LdapDirectory:
    """One directory from the inventory; `account_dn` is a template with `{identity}`."""

    system: str
    url: str
    bind_dn: str
    password: SecretRef
    account_dn: str
    strategy: Strategy = "lock"
    groups_base: str | None = None
    disabled_ou: str | None = None
    # The account's own password, as a template (`{identity}` in the file or env name);
    # used by verify only, to prove that a bind as the account fails.
    probe_password: SecretRef | None = None
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"{self.system}: strategy must be one of {', '.join(STRATEGIES)}, "
                f"not {self.strategy!r}"
            )
        if "{identity}" not in self.account_dn:
            raise ValueError(f"{self.system}: account_dn must contain {{identity}}")
        if self.strategy == "move" and not self.disabled_ou:
            raise ValueError(f"{self.system}: the move strategy needs disabled_ou")
        if not self.url.startswith(("ldap://", "ldaps://")):
            raise ValueError(
                f"{self.system}: url (endpoint) must be ldap:// or ldaps://, got {self.url!r}"
            )
        if self.timeout_s <= 0:
            raise ValueError(f"{self.system}: timeout_s must be positive")

    @classmethod
    def from_config(
        cls,
        system: str,
        config: Mapping[str, Any],
        *,
        url: str | None = None,
        secrets_dir: Path | None = None,
    ) -> LdapDirectory:
        """Read an inventory record; file names are relative to `secrets_dir`."""
        record = dict(config)
        if "password" in record or "probe_password" in record:
            raise ValueError(f"{system}: passwords are read from *_file or *_env keys only")
        endpoint = lab_or(_text(system, record, "endpoint"), url, f"{system}: key 'endpoint'")
        password = SecretRef.from_config(record, "password", base=secrets_dir)
        if password.env is None and password.file is None:
            raise ValueError(f"{system}: set key 'password_file' or 'password_env'")
        probe = SecretRef.from_config(record, "probe_password", base=secrets_dir)
        for template in (probe.env, probe.file):
            _check_template(system, "probe_password_file/_env", str(template or ""))
        timeout = record.get("timeout_s", 5.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"{system}: key 'timeout_s' must be a positive number of seconds")
        account_dn = _text(system, record, "account_dn")
        _check_template(system, "account_dn", account_dn)
        return cls(
            system=system,
            url=endpoint,
            bind_dn=_text(system, record, "bind_dn"),
            password=password,
            account_dn=account_dn,
            # Checked with the other values in __post_init__.
            strategy=cast("Strategy", record.get("strategy", "lock")),
            groups_base=_text(system, record, "groups_base", required=False),
            disabled_ou=_text(system, record, "disabled_ou", required=False),
            probe_password=probe if probe.env or probe.file else None,
            timeout_s=float(timeout),
        )

    def dn_of(self, identity: str) -> str:
        return self.account_dn.format(identity=escape_rdn(identity))

    def disabled_dn_of(self, identity: str) -> str:
        if not self.disabled_ou:
            raise PermanentAdapterError(f"{self.system}: no disabled_ou is configured")
        return f"{_rdn(self.dn_of(identity))},{self.disabled_ou}"

    def probe_secret(self, identity: str) -> SecretRef | None:
        ref = self.probe_password
        if ref is None:
            return None
        env = ref.env.format(identity=identity) if ref.env else None
        file = Path(str(ref.file).format(identity=identity)) if ref.file else None
        return SecretRef(env=env, file=file)


def _text(system: str, record: Mapping[str, Any], key: str, *, required: bool = True) -> Any:
    value = record.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{system}: key {key!r} must be a non-empty string")
    return value


def _check_template(system: str, key: str, template: str) -> None:
    try:
        template.format(identity="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"{system}: key {key!r} may only use the {{identity}} field") from exc


def _rdn(dn: str) -> str:
    return str(to_dn(dn)[0])


def _parent(dn: str) -> str:
    return ",".join(to_dn(dn)[1:])


# --- talking to the directory (worker thread) ------------------------------------------------


def _failure(connection: Any, what: str) -> AdapterError:
    result = connection.result or {}
    code = result.get("result")
    text = f"{what}: {result.get('description')} ({code}) {result.get('message') or ''}".strip()
    kind = TransientAdapterError if code in _TRANSIENT_RESULTS else PermanentAdapterError
    return kind(text)


def _close(connection: Any) -> None:
    with suppress(LDAPException, OSError):
        connection.unbind()
    # ldap3 2.9.1 leaves the socket of a refused connect open: close it ourselves.
    if connection.socket is not None:
        connection.socket.close()


@contextmanager
def _connection(directory: LdapDirectory, user: str, password: str) -> Iterator[Any]:
    server = ldap3.Server(directory.url, get_info=ldap3.NONE, connect_timeout=directory.timeout_s)
    connection = ldap3.Connection(
        server,
        user=user,
        password=password,
        # ldap3 packs this into SO_RCVTIMEO as whole seconds: a float raises struct.error.
        receive_timeout=max(1, math.ceil(directory.timeout_s)),
        auto_referrals=False,
    )
    try:
        yield connection
    except (LDAPCommunicationError, OSError) as exc:
        raise TransientAdapterError(
            f"{directory.system} at {directory.url} did not answer: {exc}"
        ) from exc
    except LDAPException as exc:
        raise PermanentAdapterError(f"{directory.system}: {exc}") from exc
    finally:
        _close(connection)


@contextmanager
def _admin(directory: LdapDirectory) -> Iterator[Any]:
    password = directory.password.read()
    if not password:  # an empty password is an anonymous bind, which would "work"
        raise PermanentAdapterError(
            f"empty credential for {directory.system} (from {directory.password.describe()})"
        )
    with _connection(directory, directory.bind_dn, password) as connection:
        if not connection.bind():
            if connection.result.get("result") == _INVALID_CREDENTIALS:
                raise PermanentAdapterError(
                    f"{directory.system} rejected the bind as {directory.bind_dn} (invalid "
                    f"credentials; password from {directory.password.describe()})"
                )
            raise _failure(connection, f"{directory.system}: bind as {directory.bind_dn}")
        yield connection


def _search(connection: Any, base: str, query: str, scope: str, attrs: list[str]) -> list[Any]:
    """Entries found (an empty list when `base` does not exist)."""
    if not connection.search(base, query, scope, attributes=attrs):
        code = connection.result.get("result")
        if code not in {0, _NO_SUCH_OBJECT}:
            raise _failure(connection, f"search under {base}")
    return [item for item in connection.response or [] if item.get("type") == "searchResEntry"]


def _entry(connection: Any, dn: str, attrs: list[str]) -> dict[str, list[Any]] | None:
    found = _search(connection, dn, "(objectClass=*)", ldap3.BASE, attrs)
    return dict(found[0]["attributes"]) if found else None


def _modify(connection: Any, dn: str, changes: dict[str, Any], *, tolerate: int = -1) -> int:
    """Apply one modify; `tolerate` is a result code that means "already so"."""
    if connection.modify(dn, changes):
        return 0
    code = int(connection.result.get("result", -1))
    if code != tolerate:
        raise _failure(connection, f"modify {dn}")
    return code


@dataclass(frozen=True)
class _Change:
    text: str
    run: Callable[[Any], None]


class _Account:
    """The account as one strategy sees it: read state, plan changes, judge a state."""

    kind: Strategy
    needs: tuple[str, ...] = ()

    def __init__(self, directory: LdapDirectory, identity: str) -> None:
        self.directory = directory
        self.identity = identity
        self.dn = directory.dn_of(identity)

    def missing(self) -> PermanentAdapterError:
        return PermanentAdapterError(f"{self.directory.system} has no entry {self.dn}")

    def read(self, connection: Any) -> dict[str, Any]:
        raise NotImplementedError

    def disabled(self, state: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def changes(self, current: dict[str, Any], target: dict[str, Any]) -> list[_Change]:
        raise NotImplementedError

    def matches(self, observed: dict[str, Any], expected: dict[str, Any]) -> bool:
        raise NotImplementedError

    def bind_expected(self, expected: dict[str, Any]) -> bool | None:
        """Whether a bind as the account should work in `expected` (None: says nothing)."""
        return not expected.get("disabled")


class _Lock(_Account):
    kind = "lock"
    needs = ("locked_time",)

    def read(self, connection: Any) -> dict[str, Any]:
        entry = _entry(connection, self.dn, [LOCK_ATTRIBUTE])
        if entry is None:
            raise self.missing()
        values = entry.get(LOCK_ATTRIBUTE) or []
        locked = str(values[0]) if values else None
        disabled = locked == PERMANENT_LOCK
        return {"strategy": self.kind, "dn": self.dn, "locked_time": locked, "disabled": disabled}

    def disabled(self, state: dict[str, Any]) -> dict[str, Any]:
        return {**state, "locked_time": PERMANENT_LOCK, "disabled": True}

    def changes(self, current: dict[str, Any], target: dict[str, Any]) -> list[_Change]:
        value, dn = target["locked_time"], self.dn
        if current["locked_time"] == value:
            return []
        if value is None:
            # Only when the account was not locked before the step: unlock it.
            def unlock(connection: Any) -> None:
                removal: dict[str, Any] = {LOCK_ATTRIBUTE: [(ldap3.MODIFY_DELETE, [])]}
                _modify(connection, dn, removal, tolerate=_NO_SUCH_ATTRIBUTE)

            return [_Change(f"delete {LOCK_ATTRIBUTE} of {dn}", unlock)]

        def lock(connection: Any) -> None:
            _modify(connection, dn, {LOCK_ATTRIBUTE: [(ldap3.MODIFY_REPLACE, [value])]})

        return [_Change(f"set {LOCK_ATTRIBUTE} of {dn} to {value}", lock)]

    def matches(self, observed: dict[str, Any], expected: dict[str, Any]) -> bool:
        return bool(observed["locked_time"] == expected["locked_time"])

    def bind_expected(self, expected: dict[str, Any]) -> bool | None:
        # A lock the account had before the step may be a timed one: its bind says nothing.
        if expected["locked_time"] not in {None, PERMANENT_LOCK}:
            return None
        return expected["locked_time"] is None


class _Groups(_Account):
    kind = "groups"
    needs = ("groups",)

    def read(self, connection: Any) -> dict[str, Any]:
        if _entry(connection, self.dn, ["1.1"]) is None:
            raise self.missing()
        dn = escape_filter_chars(self.dn)
        query = (
            f"(|(&(objectClass=groupOfNames)(member={dn}))"
            f"(&(objectClass=groupOfUniqueNames)(uniqueMember={dn})))"
        )
        base = self.directory.groups_base or _naming_context(connection, self.dn)
        found = _search(connection, base, query, ldap3.SUBTREE, ["1.1"])
        groups = sorted(str(item["dn"]) for item in found)
        return {"strategy": self.kind, "dn": self.dn, "groups": groups, "disabled": not groups}

    def disabled(self, state: dict[str, Any]) -> dict[str, Any]:
        return {**state, "groups": [], "disabled": True}

    def changes(self, current: dict[str, Any], target: dict[str, Any]) -> list[_Change]:
        have, want = set(current["groups"]), set(target["groups"])
        # Restoring re-adds memberships; groups joined since are not ours to take away.
        drop = sorted(have - want) if not want else []
        return [
            *(_Change(f"remove {self.dn} from {g}", _remover(self.dn, g)) for g in drop),
            *(_Change(f"add {self.dn} to {g}", _adder(self.dn, g)) for g in sorted(want - have)),
        ]

    def matches(self, observed: dict[str, Any], expected: dict[str, Any]) -> bool:
        if not expected["groups"]:
            return not observed["groups"]
        return set(expected["groups"]) <= set(observed["groups"])

    def bind_expected(self, expected: dict[str, Any]) -> bool | None:
        return None  # group membership grants rights; it does not gate the bind itself


class _Move(_Account):
    kind = "move"
    needs = ("dn",)

    def read(self, connection: Any) -> dict[str, Any]:
        moved = self.directory.disabled_dn_of(self.identity)
        for dn in (self.dn, moved):
            if _entry(connection, dn, ["1.1"]) is not None:
                return {"strategy": self.kind, "dn": dn, "disabled": dn == moved}
        raise PermanentAdapterError(f"{self.directory.system} has no entry {self.dn} or {moved}")

    def disabled(self, state: dict[str, Any]) -> dict[str, Any]:
        return {**state, "dn": self.directory.disabled_dn_of(self.identity), "disabled": True}

    def changes(self, current: dict[str, Any], target: dict[str, Any]) -> list[_Change]:
        source, destination = str(current["dn"]), str(target["dn"])
        if source.lower() == destination.lower():
            return []

        def move(connection: Any) -> None:
            parent = _parent(destination)
            if not connection.modify_dn(source, _rdn(destination), new_superior=parent):
                raise _failure(connection, f"move {source} to {destination}")

        return [_Change(f"move {source} to {destination}", move)]

    def matches(self, observed: dict[str, Any], expected: dict[str, Any]) -> bool:
        return bool(str(observed["dn"]).lower() == str(expected["dn"]).lower())


_STRATEGIES: dict[str, type[_Account]] = {"lock": _Lock, "groups": _Groups, "move": _Move}


def _remover(member: str, group: str) -> Callable[[Any], None]:
    def remove(connection: Any) -> None:
        attribute = _member_attribute(connection, group)
        removal = [(ldap3.MODIFY_DELETE, [member])]
        code = _modify(connection, group, {attribute: removal}, tolerate=_OBJECT_CLASS_VIOLATION)
        if code == _OBJECT_CLASS_VIOLATION:  # it was the last member: leave the placeholder
            swap = [(ldap3.MODIFY_ADD, [EMPTY_MEMBER]), *removal]
            _modify(connection, group, {attribute: swap})

    return remove


def _adder(member: str, group: str) -> Callable[[Any], None]:
    def add(connection: Any) -> None:
        attribute = _member_attribute(connection, group)
        addition = {attribute: [(ldap3.MODIFY_ADD, [member])]}
        _modify(connection, group, addition, tolerate=_VALUE_EXISTS)
        placeholder = {attribute: [(ldap3.MODIFY_DELETE, [EMPTY_MEMBER])]}
        _modify(connection, group, placeholder, tolerate=_NO_SUCH_ATTRIBUTE)

    return add


def _member_attribute(connection: Any, group: str) -> str:
    entry = _entry(connection, group, ["objectClass"])
    if entry is None:
        raise PermanentAdapterError(f"group {group} no longer exists")
    classes = {str(value).lower() for value in entry.get("objectClass", [])}
    return "uniqueMember" if "groupofuniquenames" in classes else "member"


def _naming_context(connection: Any, dn: str) -> str:
    root = _entry(connection, "", ["namingContexts"]) or {}
    contexts = [str(c) for c in root.get("namingContexts", [])]
    contexts = [c for c in contexts if c and dn.lower().endswith(c.lower())]
    if not contexts:
        raise PermanentAdapterError(f"no naming context holds {dn}; configure groups_base")
    return max(contexts, key=len)


def _probe(account: _Account) -> str:
    """Bind as the account itself: "accepted", "rejected", or why it was not tried."""
    ref = account.directory.probe_secret(account.identity)
    if ref is None:
        return "not checked: no probe credential configured"
    try:
        password = ref.read()
    except PermanentAdapterError as exc:
        return f"not checked: {exc}"
    if not password:  # an empty password would be an anonymous bind, which always works
        return f"not checked: empty credential ({ref.describe()})"
    with _connection(account.directory, account.dn, password) as connection:
        if connection.bind():
            return "accepted"
        if connection.result.get("result") == _INVALID_CREDENTIALS:
            return "rejected"
        raise _failure(connection, f"probe bind as {account.dn}")


class LdapAdapter:
    """Adapter `ldap`: action `deny` on target `{"identity": ..., "system": ...}`."""

    name = "ldap"

    def __init__(self, directories: Mapping[str, LdapDirectory]) -> None:
        self._directories = dict(directories)

    def _account(
        self, target: Mapping[str, Any], state: Mapping[str, Any] | None = None
    ) -> _Account:
        system, identity = target.get("system"), target.get("identity")
        if not isinstance(system, str) or system not in self._directories:
            known = names(self._directories)
            raise PermanentAdapterError(f"no LDAP directory {system!r} is configured ({known})")
        if not isinstance(identity, str) or not _IDENTITY.match(identity):
            raise PermanentAdapterError(f"target identity {identity!r} is not an account name")
        directory = self._directories[system]
        # A receipt names the strategy it was made with, even if the config changed since.
        kind = (state or {}).get("strategy", directory.strategy)
        if kind not in _STRATEGIES:
            raise PermanentAdapterError(f"receipt names unknown strategy {kind!r}")
        return _STRATEGIES[kind](directory, identity)

    def _check(self, command: StepCommand) -> _Account:
        check_action(self.name, command, SUPPORTED_ACTIONS)
        return self._account(command.target)

    def validate(self, command: StepCommand) -> None:
        """The checks `plan` makes before it reads the target, and nothing else: no I/O.

        Raises PermanentAdapterError saying why this adapter would refuse the step; used
        by `bulkhead policy check` to catch such steps before a policy is merged."""
        self._check(command)

    @staticmethod
    async def _run(account: _Account, work: Callable[[Any], T]) -> T:
        def call() -> T:
            with _admin(account.directory) as connection:
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
            return before, after, _converge(connection, account, before, after)

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
        bind = await asyncio.to_thread(_probe, account) if want is not None else "not checked"
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
            return current, _converge(connection, account, current, target)

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


def _converge(
    connection: Any, account: _Account, current: dict[str, Any], target: dict[str, Any]
) -> list[str]:
    """Make the changes that take `current` to `target`; their descriptions.

    A change the directory refuses for good (a group deleted meanwhile) does not stop the
    others: containment and restoration go as far as they can, then the refusals are
    raised together. A transient failure stops at once: the retry converges the rest.
    """
    done: list[str] = []
    refused: list[str] = []
    for change in account.changes(current, target):
        try:
            change.run(connection)
        except PermanentAdapterError as exc:
            refused.append(str(exc))
        else:
            done.append(change.text)
    if refused:
        finished = f" (done: {'; '.join(done)})" if done else ""
        raise PermanentAdapterError("; ".join(refused) + finished)
    return done


def _describe(state: Mapping[str, Any]) -> str:
    shown = {k: v for k, v in state.items() if k not in {"strategy", "bind"}}
    return ", ".join(f"{key}={value}" for key, value in shown.items())
