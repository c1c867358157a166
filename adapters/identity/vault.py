"""Identity revocation on Vault/OpenBao: cut a shared account off, for good.

Action `deny` on target `{"identity": <userpass user>, "system": <inventory id>}`:

1. rotate the account's userpass password to a random value nobody keeps, first, so no
   new login can happen while the rest runs;
2. revoke, by accessor, every live token of the identity (see `_belongs` for the rule);
   a second round catches a token minted by one of them in the meantime;
3. revoke every lease under the configured prefixes (`sys/leases/revoke-prefix`).

None of it can be undone: revoked tokens and leases are gone and the old password is
lost. Rollback therefore changes nothing and says so; the inventory marks the system
irreversible, so the policy asks for approval before the step. Receipts record accessors
and lease ids (handles that need privileges to use), never token values or passwords.

hvac is synchronous, so each operation runs as one blocking function in a worker thread.
"""

from __future__ import annotations

import asyncio
import math
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import hvac
import hvac.exceptions

from adapters.base import PermanentAdapterError, TransientAdapterError
from adapters.identity import systems
from adapters.secrets import SecretRef
from contracts.adapter import Capabilities, Plan, Receipt, StepCommand, Verification

SUPPORTED_ACTIONS = ("deny",)
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
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
_TOKEN_ROUNDS = 3
_LEASE_DEPTH = 4
T = TypeVar("T")


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
        if not _NAME.fullmatch(auth_mount):
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


@dataclass
class _Session:
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
        """Accessors of the identity's live tokens (see `_belongs`), never our own."""
        entity = self.entity_of(identity)
        with self.errors("listing token accessors"):
            accessors = self.client.auth.token.list_accessors()["data"]["keys"]
        found = []
        for accessor in accessors:
            if accessor == self.own_accessor:
                continue
            info = self.token_info(accessor)
            if info is not None and _belongs(info, identity, self.server.auth_mount, entity):
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


def _belongs(info: Mapping[str, Any], identity: str, mount: str, entity: str | None) -> bool:
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


def _identity(target: Mapping[str, Any]) -> str:
    identity = target.get("identity")
    if not isinstance(identity, str) or not _NAME.fullmatch(identity):
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

    async def _run(self, server: VaultServer, work: Callable[[_Session], T]) -> T:
        def session() -> T:
            # Read at each call, so a rotated token file is picked up without a restart.
            client = hvac.Client(
                url=server.url, token=server.token.read(), timeout=server.client_timeout
            )
            try:
                return work(_Session(server, client))
            finally:
                client.adapter.close()

        return await asyncio.to_thread(session)

    async def plan(self, command: StepCommand) -> Plan:
        server, identity = self._check(command)

        def look(session: _Session) -> tuple[list[str], list[str]]:
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

        def revoke(session: _Session) -> tuple[list[str], list[str]]:
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
        password = _probe_password(server, identity)

        def observe(session: _Session) -> dict[str, Any]:
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


def _probe_password(server: VaultServer, identity: str) -> str | None:
    if server.probe_password_file is None:
        return None
    path = Path(server.probe_password_file.format(identity=identity))
    return SecretRef(file=path).read()
