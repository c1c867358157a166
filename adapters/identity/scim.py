"""Identity revocation over SCIM 2.0 (RFC 7643/7644): deactivate a shared account.

Action `deny` on target `{"identity": <userName>, "system": <inventory id>}` finds the user
with `filter=userName eq "<identity>"` and PATCHes `active` to false; a system configured
with `remove_groups` also loses the user from every group it belongs to. Each write happens
only when the target differs, so a retried apply writes nothing twice. Rollback restores
only what apply changed (the state in `Receipt.before` where it differs from `after`).

Group memberships are read with `members.value eq "<user id>"` on /Groups rather than the
user's `groups` attribute: RFC 7643 leaves that attribute optional and read-only, and
scim2-server does not fill it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
from scim2_client import BaseAsyncSCIMClient, SCIMClientException
from scim2_client.client import RawResponse
from scim2_models import (
    Group,
    ListResponse,
    PatchOp,
    PatchOperation,
    SCIMException,
    ScimProvider,
    SearchRequest,
    User,
)

from adapters.base import PermanentAdapterError, TransientAdapterError
from adapters.identity import systems
from adapters.secrets import SecretRef
from contracts.adapter import Capabilities, Plan, Receipt, StepCommand, Verification

SUPPORTED_ACTIONS = ("deny",)
_KEYS = frozenset({"endpoint", "token_env", "token_file", "remove_groups", "timeout_s"})
_PAGE = 100
_PROVIDER = ScimProvider(models=[User, Group])


@dataclass(frozen=True)
class ScimService:
    """A SCIM service provider holding shared accounts, and the credential to manage it."""

    system: str
    url: str
    token: SecretRef
    remove_groups: bool = False
    timeout_s: float = 5.0

    @classmethod
    def from_config(
        cls,
        system: str,
        config: Mapping[str, Any],
        *,
        url: str | None = None,
        secrets_dir: Path | None = None,
    ) -> ScimService:
        """An inventory record: `{"endpoint": "lab" | "https://idp/scim/v2", "token_file":
        "scim-token" | "token_env": "VAR", "remove_groups": false, "timeout_s": 5}`.
        `url` is what endpoint "lab" (the default) means; relative token files are read
        from `secrets_dir`."""
        systems.check_keys(system, config, _KEYS)
        endpoint = systems.http_endpoint(system, config, url)
        remove_groups = config.get("remove_groups", False)
        if not isinstance(remove_groups, bool):
            # ValueError like every other inventory mistake, so callers catch one type.
            raise ValueError(f"systems.{system}.remove_groups must be true or false")  # noqa: TRY004
        return cls(
            system=system,
            url=endpoint,
            token=systems.token_ref(system, config, secrets_dir),
            remove_groups=remove_groups,
            timeout_s=systems.timeout_of(system, config),
        )


class _HttpxScimClient(BaseAsyncSCIMClient):
    """scim2-client 0.13 ships engines for httpx2 only; this is the same engine over httpx.

    It also sorts HTTP failures before SCIM parsing sees them, because the status code
    alone tells a retryable outage from a refused credential, whatever the body holds.
    """

    def __init__(self, client: httpx.AsyncClient, service: ScimService) -> None:
        super().__init__(provider=_PROVIDER)
        self.client = client
        self._service = service

    def _parse_json(self, response: RawResponse) -> Any:
        return cast(httpx.Response, response).json()

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        service = self._service
        try:
            response = await self.client.request(method, url, **kwargs)
        except httpx.RequestError as exc:
            raise TransientAdapterError(
                f"{service.system}: cannot reach SCIM service at {service.url} "
                f"({type(exc).__name__})"
            ) from exc
        if response.status_code in {401, 403}:
            raise PermanentAdapterError(
                f"{service.system} rejected the SCIM token from {service.token.describe()} "
                f"(HTTP {response.status_code})"
            )
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientAdapterError(
                f"{service.system}: {method} {url} answered HTTP {response.status_code}"
            )
        return response


def _identity(target: Mapping[str, Any]) -> str:
    identity = target.get("identity")
    if not isinstance(identity, str) or not identity.strip():
        raise PermanentAdapterError(f"scim step needs target.identity (got {dict(target)!r})")
    return identity


class ScimAdapter:
    """Adapter `scim`: action `deny` deactivates a shared account on a SCIM provider."""

    name = "scim"

    def __init__(self, services: Mapping[str, ScimService]) -> None:
        self._services = dict(services)

    def _service(self, target: Mapping[str, Any]) -> ScimService:
        return systems.system_for(target, self._services, "SCIM")

    def _check(self, command: StepCommand) -> tuple[ScimService, str]:
        systems.check_action(self.name, command, SUPPORTED_ACTIONS)
        return self._service(command.target), _identity(command.target)

    def validate(self, command: StepCommand) -> None:
        """The checks `plan` makes before it reads the target, and nothing else: no I/O.

        Raises PermanentAdapterError saying why this adapter would refuse the step; used
        by `bulkhead policy check` to catch such steps before a policy is merged."""
        self._check(command)

    @asynccontextmanager
    async def _client(self, service: ScimService) -> AsyncIterator[_HttpxScimClient]:
        # Read at each call, so a rotated token file is picked up without a restart.
        headers = {"Authorization": f"Bearer {service.token.read()}"}
        async with httpx.AsyncClient(
            base_url=service.url, headers=headers, timeout=service.timeout_s
        ) as http:
            try:
                yield _HttpxScimClient(http, service)
            except SCIMException as exc:
                raise PermanentAdapterError(
                    f"{service.system} refused the request: {exc} (status {exc.status})"
                ) from exc
            except SCIMClientException as exc:
                raise PermanentAdapterError(
                    f"{service.system} answered something that is not SCIM 2.0: {exc}"
                ) from exc

    # --- reading the target ------------------------------------------------------------

    async def _find_user(
        self, client: _HttpxScimClient, service: ScimService, identity: str
    ) -> User[Any]:
        # A JSON string is a valid SCIM filter literal, so quotes in a name cannot escape it.
        query: SearchRequest[User[Any]] = SearchRequest(
            filter=f"userName eq {json.dumps(identity)}", count=2
        )
        found = await client.query(User, query_parameters=query)
        users = list(cast("ListResponse[User[Any]]", found).resources or [])
        if not users:
            raise PermanentAdapterError(f"{service.system} has no SCIM user named {identity!r}")
        if len(users) > 1:
            raise PermanentAdapterError(f"{service.system} has several users named {identity!r}")
        return users[0]

    async def _user(self, client: _HttpxScimClient, user_id: str) -> User[Any]:
        return cast("User[Any]", await client.query(User, user_id))

    async def _groups_of(self, client: _HttpxScimClient, user_id: str) -> list[str]:
        groups: list[str] = []
        start = 1
        while True:
            query: SearchRequest[Group] = SearchRequest(
                filter=f"members.value eq {json.dumps(user_id)}",
                attributes=["id"],
                start_index=start,
                count=_PAGE,
            )
            page = cast("ListResponse[Group]", await client.query(Group, query_parameters=query))
            resources = list(page.resources or [])
            groups.extend(str(group.id) for group in resources)
            start += len(resources)
            if not resources or start > (page.total_results or 0):
                return sorted(groups)

    async def _state(
        self, client: _HttpxScimClient, service: ScimService, user: User[Any]
    ) -> State:
        user_id = str(user.id)
        groups = await self._groups_of(client, user_id) if service.remove_groups else None
        return State(user_id=user_id, active=user.active is not False, groups=groups)

    # --- writing the target ------------------------------------------------------------

    async def _set_active(self, client: _HttpxScimClient, user_id: str, *, active: bool) -> None:
        operation = PatchOperation[User[Any]](op="replace", path="active", value=active)
        await client.modify(User, user_id, PatchOp[User[Any]](operations=[operation]))

    async def _leave(self, client: _HttpxScimClient, group_id: str, user_id: str) -> None:
        path = f"members[value eq {json.dumps(user_id)}]"
        operation = PatchOperation[Group](op="remove", path=path)
        await client.modify(Group, group_id, PatchOp[Group](operations=[operation]))

    async def _join(self, client: _HttpxScimClient, group_id: str, user_id: str) -> None:
        operation = PatchOperation[Group](op="add", path="members", value=[{"value": user_id}])
        await client.modify(Group, group_id, PatchOp[Group](operations=[operation]))

    async def _converge(
        self, client: _HttpxScimClient, current: State, wanted: State, undo: State
    ) -> list[str]:
        """Write what differs between `current` and `wanted`, touching only the parts
        that `undo` (the other side of the change) says this step manages."""
        done: list[str] = []
        user_id = current.user_id
        managed = wanted.active != undo.active
        if managed and current.active != wanted.active:
            await self._set_active(client, user_id, active=wanted.active)
            done.append("activated" if wanted.active else "deactivated")
        if current.groups is not None and wanted.groups is not None and undo.groups is not None:
            for group_id in sorted(set(undo.groups) - set(wanted.groups)):
                if group_id in current.groups:
                    await self._leave(client, group_id, user_id)
                    done.append(f"left group {group_id}")
            for group_id in sorted(set(wanted.groups) - set(undo.groups)):
                if group_id not in current.groups:
                    await self._join(client, group_id, user_id)
                    done.append(f"rejoined group {group_id}")
        return done

    # --- the Adapter protocol ----------------------------------------------------------

    async def plan(self, command: StepCommand) -> Plan:
        service, identity = self._check(command)
        async with self._client(service) as client:
            user = await self._find_user(client, service, identity)
            before = await self._state(client, service, user)
        after = before.revoked()
        changes = [
            f"PATCH {service.url}/Users/{before.user_id}: active false"
            if before.active
            else f"no change: {identity} already inactive on {service.system}"
        ]
        changes += [f"remove {identity} from group {g}" for g in before.groups or []]
        return Plan(
            adapter=self.name,
            summary=f"deactivate {identity} on {service.system}",
            changes=changes,
            before=before.as_dict(),
            after=after.as_dict(),
        )

    async def apply(self, command: StepCommand, *, key: str) -> Receipt:
        service, identity = self._check(command)
        async with self._client(service) as client:
            user = await self._find_user(client, service, identity)
            before = await self._state(client, service, user)
            after = before.revoked()
            done = await self._converge(client, before, after, before)
        return Receipt(
            adapter=self.name,
            key=key,
            target=dict(command.target),
            action=command.action,
            applied=True,
            before=before.as_dict(),
            after=after.as_dict(),
            detail="; ".join(done) if done else "already inactive, nothing written",
        )

    async def verify(self, receipt: Receipt) -> Verification:
        service = self._service(receipt.target)
        expected = State.from_dict(receipt.after)
        other = State.from_dict(receipt.before) if receipt.before else expected
        async with self._client(service) as client:
            user = await self._user(client, expected.user_id)
            observed = await self._state(client, service, user)
        problems = expected.mismatches(observed, other)
        return Verification(
            ok=not problems,
            observed=observed.as_dict(),
            detail="; ".join(problems) or "user state reads back as expected",
        )

    async def rollback(self, receipt: Receipt) -> Receipt:
        service = self._service(receipt.target)
        if not receipt.applied or "active" not in receipt.before:
            return receipt.model_copy(update={"applied": False, "detail": "nothing to undo"})
        previous = State.from_dict(receipt.before)
        changed = State.from_dict(receipt.after)
        async with self._client(service) as client:
            user = await self._user(client, previous.user_id)
            current = await self._state(client, service, user)
            done = await self._converge(client, current, previous, changed)
        return receipt.model_copy(
            update={
                "applied": False,
                "before": receipt.after,
                "after": receipt.before,
                "detail": "; ".join(done) if done else "already restored, nothing written",
            }
        )

    async def capabilities(self) -> Capabilities:
        return Capabilities(
            adapter=self.name,
            usable=bool(self._services),
            actions=list(SUPPORTED_ACTIONS),
            detail=f"reversible; {len(self._services)} SCIM system(s): "
            + systems.names(self._services),
        )


@dataclass(frozen=True)
class State:
    """What the adapter manages of one user: `active`, and its groups when it removes them
    (None: groups are not managed on this system, so they are neither read nor compared)."""

    user_id: str
    active: bool
    groups: list[str] | None

    def revoked(self) -> State:
        return State(self.user_id, active=False, groups=[] if self.groups is not None else None)

    def as_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"id": self.user_id, "active": self.active}
        if self.groups is not None:
            state["groups"] = list(self.groups)
        return state

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> State:
        if not isinstance(data.get("id"), str) or not isinstance(data.get("active"), bool):
            raise PermanentAdapterError(f"receipt state {dict(data)!r} lacks id/active")
        groups = data.get("groups")
        return cls(
            user_id=data["id"],
            active=data["active"],
            groups=None if groups is None else [str(g) for g in groups],
        )

    def mismatches(self, observed: State, other: State) -> list[str]:
        """How `observed` departs from this expected state. Groups: every expected one is
        held and none that the change took away (`other` minus expected) is; memberships
        added since by someone else are not this step's business."""
        problems = []
        if observed.active != self.active:
            problems.append(f"active is {observed.active}, expected {self.active}")
        if self.groups is not None and observed.groups is not None:
            held = set(observed.groups)
            missing = sorted(set(self.groups) - held)
            extra = sorted((set(other.groups or []) - set(self.groups)) & held)
            if missing:
                problems.append(f"not member of {missing}")
            if extra:
                problems.append(f"still member of {extra}")
        return problems
