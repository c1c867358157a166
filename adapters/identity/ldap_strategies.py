"""The three ways to disable an LDAP account, and the loop that carries one out.

Each strategy reads the account's state, says what "disabled" means for that state,
lists the changes from one state to another, and judges whether an observed state is the
expected one: `lock` sets ppolicy's pwdAccountLockedTime to the permanent value, `groups`
takes the account out of every group, `move` renames it into a disabled OU. Apply and
rollback both converge the account to a target state, so a retried call changes nothing
twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adapters.base import PermanentAdapterError
from adapters.identity.ldap3_quiet import escape_filter_chars, ldap3
from adapters.identity.ldap_client import (
    NO_SUCH_ATTRIBUTE,
    OBJECT_CLASS_VIOLATION,
    VALUE_EXISTS,
    entry,
    failure,
    modify,
    search,
)
from adapters.identity.ldap_directory import LdapDirectory, Strategy, parent_dn, rdn

LOCK_ATTRIBUTE = "pwdAccountLockedTime"
# ppolicy's "locked until an administrator unlocks it" value.
PERMANENT_LOCK = "000001010000Z"
# groupOfNames must keep a member: an empty DN holds the place of the last one removed.
EMPTY_MEMBER = ""


@dataclass(frozen=True)
class Change:
    """One write to the directory, and how a plan or receipt describes it."""

    text: str
    run: Callable[[Any], None]


class Account:
    """The account as one strategy sees it: read state, plan changes, judge a state."""

    kind: Strategy
    # The keys a recorded state needs before verify or rollback can use it.
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

    def changes(self, current: dict[str, Any], target: dict[str, Any]) -> list[Change]:
        raise NotImplementedError

    def matches(self, observed: dict[str, Any], expected: dict[str, Any]) -> bool:
        raise NotImplementedError

    def bind_expected(self, expected: dict[str, Any]) -> bool | None:
        """Whether a bind as the account should work in `expected` (None: says nothing)."""
        return not expected.get("disabled")


class Lock(Account):
    kind = "lock"
    needs = ("locked_time",)

    def read(self, connection: Any) -> dict[str, Any]:
        found = entry(connection, self.dn, [LOCK_ATTRIBUTE])
        if found is None:
            raise self.missing()
        values = found.get(LOCK_ATTRIBUTE) or []
        locked = str(values[0]) if values else None
        disabled = locked == PERMANENT_LOCK
        return {"strategy": self.kind, "dn": self.dn, "locked_time": locked, "disabled": disabled}

    def disabled(self, state: dict[str, Any]) -> dict[str, Any]:
        return {**state, "locked_time": PERMANENT_LOCK, "disabled": True}

    def changes(self, current: dict[str, Any], target: dict[str, Any]) -> list[Change]:
        value, dn = target["locked_time"], self.dn
        if current["locked_time"] == value:
            return []
        if value is None:
            # Only when the account was not locked before the step: unlock it.
            def unlock(connection: Any) -> None:
                removal: dict[str, Any] = {LOCK_ATTRIBUTE: [(ldap3.MODIFY_DELETE, [])]}
                modify(connection, dn, removal, tolerate=NO_SUCH_ATTRIBUTE)

            return [Change(f"delete {LOCK_ATTRIBUTE} of {dn}", unlock)]

        def lock(connection: Any) -> None:
            modify(connection, dn, {LOCK_ATTRIBUTE: [(ldap3.MODIFY_REPLACE, [value])]})

        return [Change(f"set {LOCK_ATTRIBUTE} of {dn} to {value}", lock)]

    def matches(self, observed: dict[str, Any], expected: dict[str, Any]) -> bool:
        return bool(observed["locked_time"] == expected["locked_time"])

    def bind_expected(self, expected: dict[str, Any]) -> bool | None:
        # A lock the account had before the step may be a timed one: its bind says nothing.
        if expected["locked_time"] not in {None, PERMANENT_LOCK}:
            return None
        return expected["locked_time"] is None


class Groups(Account):
    kind = "groups"
    needs = ("groups",)

    def read(self, connection: Any) -> dict[str, Any]:
        if entry(connection, self.dn, ["1.1"]) is None:
            raise self.missing()
        dn = escape_filter_chars(self.dn)
        query = (
            f"(|(&(objectClass=groupOfNames)(member={dn}))"
            f"(&(objectClass=groupOfUniqueNames)(uniqueMember={dn})))"
        )
        base = self.directory.groups_base or _naming_context(connection, self.dn)
        found = search(connection, base, query, ldap3.SUBTREE, ["1.1"])
        groups = sorted(str(item["dn"]) for item in found)
        return {"strategy": self.kind, "dn": self.dn, "groups": groups, "disabled": not groups}

    def disabled(self, state: dict[str, Any]) -> dict[str, Any]:
        return {**state, "groups": [], "disabled": True}

    def changes(self, current: dict[str, Any], target: dict[str, Any]) -> list[Change]:
        have, want = set(current["groups"]), set(target["groups"])
        # Restoring re-adds memberships; groups joined since are not ours to take away.
        drop = sorted(have - want) if not want else []
        return [
            *(Change(f"remove {self.dn} from {g}", _remover(self.dn, g)) for g in drop),
            *(Change(f"add {self.dn} to {g}", _adder(self.dn, g)) for g in sorted(want - have)),
        ]

    def matches(self, observed: dict[str, Any], expected: dict[str, Any]) -> bool:
        if not expected["groups"]:
            return not observed["groups"]
        return set(expected["groups"]) <= set(observed["groups"])

    def bind_expected(self, expected: dict[str, Any]) -> bool | None:
        return None  # group membership grants rights; it does not gate the bind itself


class Move(Account):
    kind = "move"
    needs = ("dn",)

    def read(self, connection: Any) -> dict[str, Any]:
        moved = self.directory.disabled_dn_of(self.identity)
        for dn in (self.dn, moved):
            if entry(connection, dn, ["1.1"]) is not None:
                return {"strategy": self.kind, "dn": dn, "disabled": dn == moved}
        raise PermanentAdapterError(f"{self.directory.system} has no entry {self.dn} or {moved}")

    def disabled(self, state: dict[str, Any]) -> dict[str, Any]:
        return {**state, "dn": self.directory.disabled_dn_of(self.identity), "disabled": True}

    def changes(self, current: dict[str, Any], target: dict[str, Any]) -> list[Change]:
        source, destination = str(current["dn"]), str(target["dn"])
        if source.lower() == destination.lower():
            return []

        def move(connection: Any) -> None:
            parent = parent_dn(destination)
            if not connection.modify_dn(source, rdn(destination), new_superior=parent):
                raise failure(connection, f"move {source} to {destination}")

        return [Change(f"move {source} to {destination}", move)]

    def matches(self, observed: dict[str, Any], expected: dict[str, Any]) -> bool:
        return bool(str(observed["dn"]).lower() == str(expected["dn"]).lower())


ACCOUNT_STRATEGIES: dict[str, type[Account]] = {"lock": Lock, "groups": Groups, "move": Move}


def _remover(member: str, group: str) -> Callable[[Any], None]:
    def remove(connection: Any) -> None:
        attribute = _member_attribute(connection, group)
        removal = [(ldap3.MODIFY_DELETE, [member])]
        code = modify(connection, group, {attribute: removal}, tolerate=OBJECT_CLASS_VIOLATION)
        if code == OBJECT_CLASS_VIOLATION:  # it was the last member: leave the placeholder
            swap = [(ldap3.MODIFY_ADD, [EMPTY_MEMBER]), *removal]
            modify(connection, group, {attribute: swap})

    return remove


def _adder(member: str, group: str) -> Callable[[Any], None]:
    def add(connection: Any) -> None:
        attribute = _member_attribute(connection, group)
        addition = {attribute: [(ldap3.MODIFY_ADD, [member])]}
        modify(connection, group, addition, tolerate=VALUE_EXISTS)
        placeholder = {attribute: [(ldap3.MODIFY_DELETE, [EMPTY_MEMBER])]}
        modify(connection, group, placeholder, tolerate=NO_SUCH_ATTRIBUTE)

    return add


def _member_attribute(connection: Any, group: str) -> str:
    found = entry(connection, group, ["objectClass"])
    if found is None:
        raise PermanentAdapterError(f"group {group} no longer exists")
    classes = {str(value).lower() for value in found.get("objectClass", [])}
    return "uniqueMember" if "groupofuniquenames" in classes else "member"


def _naming_context(connection: Any, dn: str) -> str:
    root = entry(connection, "", ["namingContexts"]) or {}
    contexts = [str(c) for c in root.get("namingContexts", [])]
    contexts = [c for c in contexts if c and dn.lower().endswith(c.lower())]
    if not contexts:
        raise PermanentAdapterError(f"no naming context holds {dn}; configure groups_base")
    return max(contexts, key=len)


def converge(
    connection: Any, account: Account, current: dict[str, Any], target: dict[str, Any]
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
