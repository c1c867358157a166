"""Lab city directory: a throwaway Debian slapd (OpenLDAP 2.5) on loopback.

Each start rebuilds the database from scratch with slapadd (no server needed, so it takes
milliseconds), then runs slapd in the foreground. The directory holds the shared service
accounts under `ou=services`, groups that grant them rights under `ou=groups`, an empty
`ou=disabled`, and a ppolicy default policy with `pwdLockout: TRUE`: without it slapd
ignores `pwdAccountLockedTime` and a "locked" account still binds.

The admin password is random per start and the accounts' passwords are random unless
given; all are written to `<directory>/secrets/` (0600) so adapters read them from files.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from orchestrator.lab.secretfiles import write_secret

with warnings.catch_warnings():
    # ldap3 2.9.1 imports names that pyasn1 >= 0.6.1 deprecates (tagMap, typeMap); under
    # `filterwarnings = error` that warning would fail every importer.
    warnings.filterwarnings("ignore", r"(tagMap|typeMap) is deprecated", DeprecationWarning)
    import ldap3
    from ldap3.core.exceptions import LDAPException

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SCHEMA_DIR = Path("/etc/ldap/schema")
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
MODULE_DIR = Path("/usr/lib/ldap")
# An account name becomes an RDN, an LDIF line and a file name: keep it plain.
_UID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_LOG_TAIL = 2000


def _default_accounts() -> dict[str, str]:
    # The inventory's shared service accounts; "" means "generate a password at start".
    return {"svc-scada": "", "svc-signals": "", "svc-permits": ""}


def _default_groups() -> dict[str, tuple[str, ...]]:
    # permits-app has a single member on purpose: groupOfNames must keep one.
    return {"scada-operators": ("svc-scada", "svc-signals"), "permits-app": ("svc-permits",)}


def unavailable() -> str | None:
    """Why the LDAP lab cannot run here (None when it can)."""
    for binary in (SLAPD, SLAPADD):
        if not binary.exists():
            return f"the LDAP lab needs {binary} (Debian: apt-get install slapd)"
    for module in ("back_mdb", "ppolicy", "pw-sha2"):
        if not (MODULE_DIR / f"{module}.so").exists():
            return f"the LDAP lab needs slapd's {module} module in {MODULE_DIR}"
    return None


def hash_password(password: str) -> str:
    """{SSHA512} as slapd's pw-sha2 module checks it: sha512(password + salt) + salt."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode()


@dataclass
class SlapdLab:
    """A real slapd serving `base_dn` on `host:port`, with its files under `directory`.

    `accounts` maps each service account's uid to its password ("" = random at start);
    `groups` maps a group's cn to the uids it holds.
    """

    directory: Path
    host: str = "127.0.0.1"
    port: int = 15389
    base_dn: str = "dc=city,dc=example"
    accounts: Mapping[str, str] = field(default_factory=_default_accounts)
    groups: Mapping[str, Sequence[str]] = field(default_factory=_default_groups)
    start_timeout_s: float = 10.0
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    # --- where things are ------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"ldap://{self.host}:{self.port}"

    @property
    def admin_dn(self) -> str:
        return f"cn=admin,{self.base_dn}"

    @property
    def secrets_dir(self) -> Path:
        return self.directory / "secrets"

    @property
    def admin_password_file(self) -> Path:
        return self.secrets_dir / "ldap-admin"

    @property
    def services_dn(self) -> str:
        return f"ou=services,{self.base_dn}"

    @property
    def groups_dn(self) -> str:
        return f"ou=groups,{self.base_dn}"

    @property
    def disabled_dn(self) -> str:
        return f"ou=disabled,{self.base_dn}"

    @property
    def policy_dn(self) -> str:
        return f"cn=default,ou=policies,{self.base_dn}"

    @property
    def _slapd_dir(self) -> Path:
        return self.directory / "slapd"

    @property
    def pid_file(self) -> Path:
        return self._slapd_dir / "slapd.pid"

    @property
    def log_file(self) -> Path:
        return self._slapd_dir / "slapd.log"

    def account_dn(self, uid: str) -> str:
        return f"uid={uid},{self.services_dn}"

    def group_dn(self, name: str) -> str:
        return f"cn={name},{self.groups_dn}"

    def account_password_file(self, uid: str) -> Path:
        return self.secrets_dir / "identities" / uid

    def inventory_record(self, strategy: str = "lock") -> dict[str, Any]:
        """The inventory record of this directory, as `LdapDirectory.from_config` reads it
        (file names relative to `secrets_dir`)."""
        return {
            "endpoint": "lab",
            "bind_dn": self.admin_dn,
            "password_file": "ldap-admin",
            "account_dn": f"uid={{identity}},{self.services_dn}",
            "strategy": strategy,
            "groups_base": self.groups_dn,
            "disabled_ou": self.disabled_dn,
            "probe_password_file": "identities/{identity}",
        }

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self.running:
            return
        await asyncio.to_thread(self._prepare)
        self._process = await asyncio.to_thread(self._spawn)
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
        try:
            await asyncio.to_thread(process.wait, 5.0)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- building the database ---------------------------------------------------------------

    def _prepare(self) -> None:
        problem = unavailable()
        if problem is not None:
            raise RuntimeError(problem)
        self._check_names()
        self._reap_stale()
        shutil.rmtree(self._slapd_dir, ignore_errors=True)
        (self._slapd_dir / "data").mkdir(parents=True, mode=0o700)
        admin_password = secrets.token_urlsafe(24)
        write_secret(self.admin_password_file, admin_password)
        passwords = {uid: pw or secrets.token_urlsafe(18) for uid, pw in self.accounts.items()}
        for uid, password in passwords.items():
            write_secret(self.account_password_file(uid), password)
        config = self._slapd_dir / "slapd.conf"
        config.write_text(self._config(hash_password(admin_password)))
        config.chmod(0o600)  # it holds the admin password's hash
        seed = self._slapd_dir / "seed.ldif"
        seed.write_text(self._seed(passwords))
        # -q: skip consistency checks; the database is new and the input is ours.
        done = subprocess.run(  # noqa: S603 - our own binary and arguments
            [str(SLAPADD), "-q", "-f", str(config), "-l", str(seed)],
            capture_output=True,
            check=False,
            timeout=self.start_timeout_s,
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")[-_LOG_TAIL:]
            raise RuntimeError(f"slapadd could not seed the lab directory: {output}")

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_file.open("wb") as log:
            # `-d none`: stay in the foreground and print only errors (plain `-d 0` prints
            # nothing, not even why a start failed).
            return subprocess.Popen(  # noqa: S603 - our own binary and arguments
                [
                    str(SLAPD),
                    "-f",
                    str(self._slapd_dir / "slapd.conf"),
                    "-h",
                    f"{self.url}/",
                    "-d",
                    "none",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _check_names(self) -> None:
        if not self.base_dn.startswith("dc="):
            raise ValueError(f"base_dn {self.base_dn!r} must start with dc= (a dcObject)")
        for uid in self.accounts:
            if not _UID.match(uid):
                raise ValueError(f"account name {uid!r} must match {_UID.pattern}")
        for name, members in self.groups.items():
            if not _UID.match(name):
                raise ValueError(f"group name {name!r} must match {_UID.pattern}")
            unknown = [uid for uid in members if uid not in self.accounts]
            if unknown or not members:
                raise ValueError(f"group {name!r} needs known members, got {list(members)}")

    def _reap_stale(self) -> None:
        """Stop a slapd a crashed run left on this directory, so the port and data are free."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if str(self._slapd_dir / "slapd.conf").encode() not in cmdline:
            return  # the pid was reused by another process
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5.0
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)

    def _config(self, admin_hash: str) -> str:
        slapd_dir = self._slapd_dir
        includes = "\n".join(f'include "{SCHEMA_DIR / name}.schema"' for name in SCHEMAS)
        return f"""{includes}
modulepath "{MODULE_DIR}"
moduleload back_mdb
moduleload ppolicy
moduleload pw-sha2
pidfile "{slapd_dir / "slapd.pid"}"
argsfile "{slapd_dir / "slapd.args"}"

database mdb
suffix "{self.base_dn}"
rootdn "{self.admin_dn}"
rootpw {admin_hash}
directory "{slapd_dir / "data"}"
maxsize 16777216
index objectClass eq
index uid,cn eq
index member,uniqueMember eq

overlay ppolicy
ppolicy_default "{self.policy_dn}"

# Passwords are for binding only; everything else is readable once bound.
access to attrs=userPassword by self =xw by anonymous auth by * none
access to * by users read by anonymous auth
"""

    def _seed(self, passwords: Mapping[str, str]) -> str:
        rdn_value = self.base_dn.split(",", 1)[0].split("=", 1)[1]
        entries = [
            [
                f"dn: {self.base_dn}",
                "objectClass: dcObject",
                "objectClass: organization",
                f"dc: {rdn_value}",
                f"o: {rdn_value}",
            ],
            *(
                [f"dn: ou={ou},{self.base_dn}", "objectClass: organizationalUnit", f"ou: {ou}"]
                for ou in ("policies", "services", "groups", "disabled")
            ),
            [
                # pwdPolicy is auxiliary; 2.5 has no namedPolicy class, so use a role.
                f"dn: {self.policy_dn}",
                "objectClass: organizationalRole",
                "objectClass: pwdPolicy",
                "cn: default",
                "pwdAttribute: userPassword",
                # Lockout honours pwdAccountLockedTime; no pwdMaxFailure, so failed binds
                # (verify's probes) never lock an account by themselves.
                "pwdLockout: TRUE",
            ],
        ]
        for number, (uid, password) in enumerate(sorted(passwords.items()), start=1):
            entries.append(
                [
                    f"dn: {self.account_dn(uid)}",
                    "objectClass: inetOrgPerson",
                    "objectClass: posixAccount",
                    f"uid: {uid}",
                    f"cn: {uid}",
                    f"sn: {uid}",
                    f"uidNumber: {2000 + number}",
                    "gidNumber: 2000",
                    f"homeDirectory: /nonexistent/{uid}",
                    f"userPassword: {hash_password(password)}",
                ]
            )
        for name, members in sorted(self.groups.items()):
            entries.append(
                [
                    f"dn: {self.group_dn(name)}",
                    "objectClass: groupOfNames",
                    f"cn: {name}",
                    *(f"member: {self.account_dn(uid)}" for uid in members),
                ]
            )
        return "\n\n".join("\n".join(lines) for lines in entries) + "\n"

    # --- readiness ---------------------------------------------------------------------------

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        password = self.admin_password_file.read_text().strip()
        while True:
            process = self._process
            if process is None or process.poll() is not None:
                code = None if process is None else process.returncode
                raise RuntimeError(
                    f"slapd exited with status {code} before serving {self.url}: {self._log()}"
                )
            # A bind as our admin proves it is our slapd answering, not a stale listener.
            if await asyncio.to_thread(self._admin_bind_works, password):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"slapd did not serve {self.url} within {self.start_timeout_s} s: {self._log()}"
                )
            await asyncio.sleep(0.02)

    def _admin_bind_works(self, password: str) -> bool:
        server = ldap3.Server(self.url, get_info=ldap3.NONE, connect_timeout=1)
        connection = ldap3.Connection(
            server, user=self.admin_dn, password=password, receive_timeout=1
        )
        try:
            return bool(connection.bind())
        except LDAPException:
            return False
        finally:
            connection.unbind()
            # ldap3 2.9.1 leaves the socket of a refused connect open: close it ourselves.
            if connection.socket is not None:
                connection.socket.close()

    def _log(self) -> str:
        try:
            text = self.log_file.read_text(errors="replace").strip()
        except OSError:
            return "(no slapd log)"
        return text[-_LOG_TAIL:] or "(slapd printed nothing)"
