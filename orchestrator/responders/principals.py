"""Principals: named responders with roles, authenticated by bearer tokens.

A token is shown once when created; only its SHA-256 is stored. Tokens carry 256 random
bits, so a fast hash is the right tool (a password KDF buys nothing for random secrets).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # contracts.incident builds every incident model; the CLI reads the operator token
    # through this module and must not pay for them (issue #18).
    from contracts.incident import Principal

# openc2-producer: a SOAR or CERT tool that sends OpenC2 commands (POST /v1/openc2).
ROLES = ("responder", "duty-officer", "admin", "viewer", "policy-engineer", "openc2-producer")
TOKEN_PREFIX = "bh_"  # noqa: S105 - a recognizable prefix, not a secret
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")


class PrincipalError(Exception):
    """A principal cannot be added or removed as asked."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class PrincipalRecord:
    name: str
    roles: tuple[str, ...]
    created_at: str
    token_sha256: str

    def principal(self) -> Principal:
        from contracts.incident import Principal, local_principal_id  # noqa: PLC0415

        # Local names cannot contain ":", so `local:<name>` never meets an `oidc:` id.
        return Principal(id=local_principal_id(self.name), name=self.name, roles=list(self.roles))


class PrincipalStore:
    """A JSON file (mode 0600) re-read whenever it changes, so every process sees edits."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._records: dict[str, PrincipalRecord] = {}
        self._by_digest: dict[str, PrincipalRecord] = {}

    def _load(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._records, self._by_digest = None, {}, {}
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        raw = json.loads(self.path.read_text())
        records = {
            name: PrincipalRecord(
                name, tuple(entry["roles"]), entry["created_at"], entry["token_sha256"]
            )
            for name, entry in raw.get("principals", {}).items()
        }
        self._stamp = stamp
        self._records = records
        self._by_digest = {r.token_sha256: r for r in records.values()}

    def _save(self) -> None:
        document = {
            "principals": {
                r.name: {
                    "roles": list(r.roles),
                    "created_at": r.created_at,
                    "token_sha256": r.token_sha256,
                }
                for r in self._records.values()
            }
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".principals-")
        with os.fdopen(fd, "w") as handle:  # mkstemp creates it 0600
            json.dump(document, handle, indent=2)
        Path(temp).replace(self.path)
        self._stamp = None

    def add(self, name: str, roles: list[str]) -> str:
        """Create a principal and return its token (the only time it is ever visible)."""
        if not NAME.match(name):
            raise PrincipalError(f"invalid name {name!r}: letters, digits, . _ @ - (max 128)")
        unknown = sorted(set(roles) - set(ROLES))
        if not roles or unknown:
            raise PrincipalError(
                f"unknown role(s) {unknown}; choose from {list(ROLES)}"
                if unknown
                else f"give at least one --role ({', '.join(ROLES)})"
            )
        self._load()
        if name in self._records:
            raise PrincipalError(f"principal {name!r} exists; remove it first to rotate")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._records[name] = PrincipalRecord(
            name, tuple(dict.fromkeys(roles)), datetime.now(UTC).isoformat(), _digest(token)
        )
        self._save()
        return token

    def remove(self, name: str) -> None:
        self._load()
        if self._records.pop(name, None) is None:
            raise PrincipalError(f"no principal {name!r}")
        self._save()

    def list(self) -> list[PrincipalRecord]:
        self._load()
        return sorted(self._records.values(), key=lambda r: r.name)

    def authenticate(self, token: str) -> Principal | None:
        self._load()
        record = self._by_digest.get(_digest(token))
        if record is None:
            return None
        return record.principal()
