"""Talking to a Vault/OpenBao server: one hvac client, its calls, and its errors.

hvac is synchronous: `in_session` opens a client, runs one blocking function of the
adapter with it in the calling (worker) thread, and closes it. `VaultSession` sorts
hvac's exceptions into the adapter's two kinds and offers the reads (account, tokens,
leases, a login probe) and writes (rotate, revoke) the adapter makes. `belongs` is the
rule that decides which tokens are the account's.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

import hvac
import hvac.exceptions

from adapters.base import PermanentAdapterError, TransientAdapterError
from adapters.identity.vault_server import VaultServer

# How deep `leases_under` follows sub-prefixes (pki/issue/<role>/...).
_LEASE_DEPTH = 4
T = TypeVar("T")


def in_session(server: VaultServer, work: Callable[[VaultSession], T]) -> T:
    """Run `work` with a fresh client on `server` (blocking), then close the client."""
    # Read at each call, so a rotated token file is picked up without a restart.
    client = hvac.Client(url=server.url, token=server.token.read(), timeout=server.client_timeout)
    try:
        return work(VaultSession(server, client))
    finally:
        client.adapter.close()


@dataclass
class VaultSession:
    """One hvac client on one server, with the errors sorted into the adapter's two kinds."""

    server: VaultServer
    client: Any

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        server = self.server
        try:
            yield
        except (hvac.exceptions.Unauthorized, hvac.exceptions.Forbidden) as exc:
            # Vault answers 403 both to an unknown token and to a missing capability.
            raise PermanentAdapterError(
                f"{server.system} rejected the token from {server.token.describe()} while "
                f"{doing} (invalid, expired, or lacking a capability)"
            ) from exc
        except (
            hvac.exceptions.InternalServerError,
            hvac.exceptions.VaultDown,
            hvac.exceptions.BadGateway,
            hvac.exceptions.RateLimitExceeded,
            hvac.exceptions.VaultNotInitialized,
        ) as exc:
            raise TransientAdapterError(f"{server.system} failed while {doing}: {exc}") from exc
        except hvac.exceptions.VaultError as exc:
            raise PermanentAdapterError(f"{server.system} refused {doing}: {exc}") from exc
        except OSError as exc:
            # requests' connection errors and timeouts derive from OSError (IOError).
            raise TransientAdapterError(
                f"{server.system}: cannot reach Vault at {server.url} while {doing} "
                f"({type(exc).__name__})"
            ) from exc

    # --- reading -----------------------------------------------------------------------

    def require_user(self, identity: str) -> None:
        mount = self.server.auth_mount
        with self.errors(f"reading user {identity}"):
            try:
                self.client.auth.userpass.read_user(identity, mount_point=mount)
            except hvac.exceptions.InvalidPath:
                raise PermanentAdapterError(
                    f"{self.server.system} has no account {identity!r} on auth/{mount}"
                ) from None

    @cached_property
    def own_accessor(self) -> str:
        with self.errors("looking up its own token"):
            return str(self.client.auth.token.lookup_self()["data"]["accessor"])

    @cached_property
    def mount_accessor(self) -> str | None:
        with self.errors("listing auth methods"):
            mounts = self.client.sys.list_auth_methods()["data"]
        accessor = (mounts.get(f"{self.server.auth_mount}/") or {}).get("accessor")
        return str(accessor) if accessor else None

    def entity_of(self, identity: str) -> str | None:
        """The entity the account's alias on the auth mount belongs to (None before its
        first login: entities are created at login)."""
        if self.mount_accessor is None:
            return None
        with self.errors(f"looking up the entity of {identity}"):
            found = self.client.secrets.identity.lookup_entity(
                alias_name=identity, alias_mount_accessor=self.mount_accessor
            )
        # 204 No Content (no such entity) comes back as a bare response, not a dict.
        return str(found["data"]["id"]) if isinstance(found, dict) and found.get("data") else None

    def token_info(self, accessor: str) -> dict[str, Any] | None:
        """What the server knows of a token; None once it no longer exists."""
        with self.errors("looking up a token accessor"):
            try:
                data: dict[str, Any] = self.client.auth.token.lookup_accessor(accessor)["data"]
            except hvac.exceptions.InvalidRequest:
                return None  # "invalid accessor": expired or revoked since it was listed
        return data

    def tokens_of(self, identity: str) -> list[str]:
        """Accessors of the identity's live tokens (see `belongs`), never our own."""
        entity = self.entity_of(identity)
        with self.errors("listing token accessors"):
            accessors = self.client.auth.token.list_accessors()["data"]["keys"]
        found = []
        for accessor in accessors:
            if accessor == self.own_accessor:
                continue
            info = self.token_info(accessor)
            if info is not None and belongs(info, identity, self.server.auth_mount, entity):
                found.append(str(accessor))
        return sorted(found)

    def leases_under(self, prefix: str, depth: int = 0) -> list[str]:
        with self.errors(f"listing leases under {prefix}"):
            try:
                keys = self.client.sys.list_leases(prefix)["data"]["keys"]
            except hvac.exceptions.InvalidPath:
                return []  # 404: no lease under this prefix
        leases = []
        for key in keys:
            if not key.endswith("/"):
                leases.append(prefix + key)
            elif depth < _LEASE_DEPTH:
                leases += self.leases_under(prefix + key, depth + 1)
        return sorted(leases)

    def login_refused(self, identity: str, password: str) -> bool:
        """Try the account's old password; a login that works is revoked at once."""
        probe = hvac.Client(url=self.server.url, token="", timeout=self.server.client_timeout)
        try:
            with self.errors(f"probing the login of {identity}"):
                try:
                    probe.auth.userpass.login(
                        identity, password, mount_point=self.server.auth_mount
                    )
                except hvac.exceptions.InvalidRequest:
                    return True  # "invalid username or password"
                probe.auth.token.revoke_self()
        finally:
            probe.adapter.close()
        return False

    # --- writing -----------------------------------------------------------------------

    def rotate_password(self, identity: str) -> None:
        # Generated, sent, and dropped: nobody, Bulkhead included, can log in with it.
        with self.errors(f"rotating the password of {identity}"):
            self.client.auth.userpass.update_password_on_user(
                identity, secrets.token_urlsafe(48), mount_point=self.server.auth_mount
            )

    def revoke_accessor(self, accessor: str) -> None:
        with self.errors("revoking a token by accessor"), suppress(hvac.exceptions.InvalidRequest):
            # "invalid accessor" means the token is gone already, which is the goal.
            self.client.auth.token.revoke_accessor(accessor)

    def revoke_prefix(self, prefix: str) -> None:
        with self.errors(f"revoking leases under {prefix}"):
            self.client.sys.revoke_prefix(prefix)


def belongs(info: Mapping[str, Any], identity: str, mount: str, entity: str | None) -> bool:
    """The matching rule: a token is the identity's when it came from the identity's login
    on the auth mount (`path` auth/<mount>/login/<identity>, which also carries
    `meta.username`), or when it is tied to the identity's entity: tokens it minted inherit
    the entity, and so do tokens of the same principal through other auth methods."""
    if info.get("path") == f"auth/{mount}/login/{identity}":
        return True
    meta = info.get("meta") or {}
    if meta.get("username") == identity and str(info.get("path", "")).startswith(f"auth/{mount}/"):
        return True
    return entity is not None and info.get("entity_id") == entity
