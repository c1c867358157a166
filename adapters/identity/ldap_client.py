"""Talking to an LDAP directory: connect and bind, search, read an entry, modify.

ldap3 is synchronous: these run in a worker thread, each call of the adapter on one
connection of its own. Failures come out as the adapter's two kinds: transient when the
directory did not answer or said it is busy, permanent for everything else.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from adapters.base import AdapterError, PermanentAdapterError, TransientAdapterError
from adapters.identity.ldap3_quiet import LDAPCommunicationError, LDAPException, ldap3
from adapters.identity.ldap_directory import LdapDirectory

# LDAP result codes (RFC 4511) the adapter tells apart.
NO_SUCH_ATTRIBUTE, VALUE_EXISTS, OBJECT_CLASS_VIOLATION = 16, 20, 65
_NO_SUCH_OBJECT, _INVALID_CREDENTIALS = 32, 49
_TRANSIENT_RESULTS = frozenset({3, 51, 52})  # timeLimitExceeded, busy, unavailable


def failure(connection: Any, what: str) -> AdapterError:
    """The error for the last operation on `connection`, which the directory refused."""
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
def admin_connection(directory: LdapDirectory) -> Iterator[Any]:
    """A connection bound as the directory's management account."""
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
            raise failure(connection, f"{directory.system}: bind as {directory.bind_dn}")
        yield connection


def probe_bind(directory: LdapDirectory, identity: str) -> str:
    """Bind as the account itself: "accepted", "rejected", or why it was not tried."""
    dn = directory.dn_of(identity)
    ref = directory.probe_secret(identity)
    if ref is None:
        return "not checked: no probe credential configured"
    try:
        password = ref.read()
    except PermanentAdapterError as exc:
        return f"not checked: {exc}"
    if not password:  # an empty password would be an anonymous bind, which always works
        return f"not checked: empty credential ({ref.describe()})"
    with _connection(directory, dn, password) as connection:
        if connection.bind():
            return "accepted"
        if connection.result.get("result") == _INVALID_CREDENTIALS:
            return "rejected"
        raise failure(connection, f"probe bind as {dn}")


def search(connection: Any, base: str, query: str, scope: str, attrs: list[str]) -> list[Any]:
    """Entries found (an empty list when `base` does not exist)."""
    if not connection.search(base, query, scope, attributes=attrs):
        code = connection.result.get("result")
        if code not in {0, _NO_SUCH_OBJECT}:
            raise failure(connection, f"search under {base}")
    return [item for item in connection.response or [] if item.get("type") == "searchResEntry"]


def entry(connection: Any, dn: str, attrs: list[str]) -> dict[str, list[Any]] | None:
    """The attributes `attrs` of the entry `dn`; None when there is no such entry."""
    found = search(connection, dn, "(objectClass=*)", ldap3.BASE, attrs)
    return dict(found[0]["attributes"]) if found else None


def modify(connection: Any, dn: str, changes: dict[str, Any], *, tolerate: int = -1) -> int:
    """Apply one modify; `tolerate` is a result code that means "already so"."""
    if connection.modify(dn, changes):
        return 0
    code = int(connection.result.get("result", -1))
    if code != tolerate:
        raise failure(connection, f"modify {dn}")
    return code
