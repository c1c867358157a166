"""Lab identity provider: a real SCIM 2.0 server (scim2-server) on loopback.

The server is scim2-server's WSGI application over its in-memory storage, served by the
standard library's threading WSGI server in a background thread: no subprocess to reap,
and `stop()` closes the listening socket before it returns. It accepts one bearer token,
generated at start and written 0600 to `<directory>/secrets/scim-token`, and holds a User
per shared account (active) and one Group holding them all, created over HTTP like any
provisioning client would.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
from scim2_models import ScimProvider
from scim2_server.memory import InMemoryStorage
from scim2_server.service import ScimService
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME, BearerTokenApplication
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)

from orchestrator.lab.secretfiles import write_secret

TOKEN_FILE = "scim-token"  # noqa: S105 - a file name, not a secret
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    # A stuck client must not hold up stop(): request threads die with the process.
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Access lines would go to stderr, interleaved with the CLI's own output."""


def _application(token: str) -> BearerTokenApplication:
    config = load_default_service_provider_config()
    # Announcing the scheme makes the server's 401 answers carry WWW-Authenticate.
    config.authentication_schemes = [*(config.authentication_schemes or []), BEARER_TOKEN_SCHEME]
    provider = ScimProvider.from_discovery(
        load_default_schemas().values(), load_default_resource_types().values(), config=config
    )
    return BearerTokenApplication(
        InMemoryStorage(), provider, service=ScimService(provider), bearer_tokens=[token]
    )


@dataclass(kw_only=True)
class ScimLab:
    """A SCIM service provider holding the city's shared accounts."""

    host: str = "127.0.0.1"
    port: int = 15380  # 0 picks a free port; `port` then holds the one bound
    directory: Path
    accounts: Sequence[str]
    group: str = "scada-operators"
    user_ids: dict[str, str] = field(default_factory=dict)
    group_id: str | None = None
    _server: _ThreadingWSGIServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The SCIM base URL (what an inventory record's endpoint "lab" stands for)."""
        return f"http://{self.host}:{self.port}/v2"

    @property
    def token_file(self) -> Path:
        return self.directory / "secrets" / TOKEN_FILE

    async def start(self) -> None:
        token = secrets.token_urlsafe(32)
        write_secret(self.token_file, token)
        server = make_server(
            self.host,
            self.port,
            _application(token),
            server_class=_ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"scim-lab-{self.port}",
            daemon=True,
        )
        self._thread.start()
        try:
            await self._seed(token)
        except BaseException:
            await self.stop()
            raise

    async def _seed(self, token: str) -> None:
        async with self._http(token) as client:
            for account in self.accounts:
                user = {"schemas": [USER_SCHEMA], "userName": account, "active": True}
                self.user_ids[account] = (await _created(client, "/Users", user))["id"]
            members = [{"value": self.user_ids[a]} for a in self.accounts]
            group = {"schemas": [GROUP_SCHEMA], "displayName": self.group, "members": members}
            self.group_id = (await _created(client, "/Groups", group))["id"]

    def _http(self, token: str | None = None) -> httpx.AsyncClient:
        token = token if token is not None else self.token_file.read_text().strip()
        return httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=5.0
        )

    async def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            # shutdown() blocks until serve_forever notices, so it waits in a worker thread.
            await asyncio.to_thread(server.shutdown)
            server.server_close()
        if thread is not None:
            await asyncio.to_thread(thread.join, 5.0)

    async def read_user(self, account: str) -> dict[str, Any]:
        """The account's User resource as any SCIM client reads it, over the wire."""
        async with self._http() as client:
            response = await client.get(f"/Users/{self.user_ids[account]}")
            response.raise_for_status()
            user: dict[str, Any] = response.json()
            return user

    async def group_members(self) -> list[str]:
        """The accounts (userNames) the lab's group holds, read over the wire."""
        async with self._http() as client:
            response = await client.get(f"/Groups/{self.group_id}")
            response.raise_for_status()
            members = {m["value"] for m in response.json().get("members") or []}
        return sorted(name for name, uid in self.user_ids.items() if uid in members)


async def _created(client: httpx.AsyncClient, path: str, resource: dict[str, Any]) -> Any:
    response = await client.post(
        path, json=resource, headers={"Content-Type": "application/scim+json"}
    )
    if response.status_code != 201:
        raise RuntimeError(f"lab SCIM server refused POST {path}: {response.status_code}")
    return response.json()
