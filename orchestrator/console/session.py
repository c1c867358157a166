"""Console sessions: a signed cookie naming the principal, with a CSRF token per session.

The cookie holds no token: a principal name, a fingerprint of the token's stored hash
(so revoking or rotating the token ends every session it opened), a random session id
and the CSRF token every form must echo. It is signed with itsdangerous under a secret
kept in the state dir (`console-secret`, 0600), so every process of one deployment that
shares the state dir accepts the same sessions; logouts are kept there too
(orchestrator/console/ended.py), so each of those processes, and any started later,
refuses a logged-out cookie. A session without a principal exists only to protect the
login form itself against CSRF.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from contracts.incident import Principal
from orchestrator.console.ended import ENDED_FILE, EndedSessions
from orchestrator.responders.principals import PrincipalStore

SECRET_FILE = "console-secret"  # noqa: S105 - a file name, not a secret
COOKIE = "bulkhead_console"
COOKIE_PATH = "/console"
SESSION_MAX_S = 12 * 3600  # one long shift; then log in again
SALT = "bulkhead.console.session"


def console_secret(state_dir: Path) -> str:
    """The signing secret of console sessions, generated into the state dir on first use.

    Written to a private temp file and hard-linked into place, so a concurrent process
    either sees the whole secret or creates none of its own (link fails if it exists)."""
    path = state_dir / SECRET_FILE
    if path.is_file():
        return path.read_text().strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=state_dir, prefix=".console-secret-")  # 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
        # Another process may have won the race: then its secret is the one to use.
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    finally:
        Path(temp).unlink()
    return path.read_text().strip()


def token_fingerprint(token_sha256: str) -> str:
    """What the cookie carries of a token: a hash of its stored hash, never the token."""
    return hashlib.sha256(f"bulkhead-console:{token_sha256}".encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    sid: str
    csrf: str
    name: str | None = None
    key: str | None = None

    @classmethod
    def anonymous(cls) -> Session:
        return cls(sid=secrets.token_urlsafe(16), csrf=secrets.token_urlsafe(32))

    def logged_in(self, name: str, key: str) -> Session:
        """A fresh id and CSRF token at login, so nothing planted before it carries over."""
        return replace(Session.anonymous(), name=name, key=key)

    def csrf_ok(self, submitted: object) -> bool:
        return isinstance(submitted, str) and hmac.compare_digest(
            submitted.encode(), self.csrf.encode()
        )


@dataclass
class Sessions:
    """Signs and reads session cookies; refuses logged-out ones until they expire."""

    secret: str
    ended: EndedSessions
    max_age_s: int = SESSION_MAX_S

    def __post_init__(self) -> None:
        self._serializer = URLSafeTimedSerializer(self.secret, salt=SALT)

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> Sessions:
        """The sessions of every process sharing this state dir."""
        return cls(console_secret(state_dir), EndedSessions(state_dir / ENDED_FILE))

    def read(self, request: Request) -> Session | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data: Any = self._serializer.loads(raw, max_age=self.max_age_s)
        except BadSignature:  # also covers expired signatures
            return None
        if not isinstance(data, dict):
            return None
        session = Session(
            sid=str(data.get("s", "")),
            csrf=str(data.get("c", "")),
            name=data.get("p") if isinstance(data.get("p"), str) else None,
            key=data.get("k") if isinstance(data.get("k"), str) else None,
        )
        if not session.sid or not session.csrf or not self.active(session):
            return None
        return session

    def active(self, session: Session) -> bool:
        """False once the session was logged out, by any process sharing the state dir."""
        return not self.ended.holds(session.sid)

    def write(self, response: Response, request: Request, session: Session) -> None:
        value = self._serializer.dumps(
            {"s": session.sid, "c": session.csrf, "p": session.name, "k": session.key}
        )
        response.set_cookie(
            COOKIE,
            value,
            max_age=self.max_age_s,
            path=COOKIE_PATH,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )

    def end(self, response: Response, request: Request, session: Session | None) -> None:
        """Log out: the cookie is cleared, and its id refused from now on by every process
        sharing the state dir, for as long as the cookie could be presented."""
        # Only logged-in sessions carry authority to revoke; recording anonymous ones would
        # let anyone grow the shared list at will.
        if session is not None and session.name is not None:
            self.ended.add(session.sid, until=time.time() + self.max_age_s)
        response.delete_cookie(
            COOKIE,
            path=COOKIE_PATH,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )


def principal_of(session: Session | None, store: PrincipalStore) -> Principal | None:
    """The session's principal as the store has it now (current roles), or None when the
    session is anonymous or its token was revoked or rotated since login."""
    if session is None or session.name is None or session.key is None:
        return None
    for record in store.list():
        if record.name == session.name and hmac.compare_digest(
            token_fingerprint(record.token_sha256).encode(), session.key.encode()
        ):
            return record.principal()
    return None


def login_key(principal: Principal, store: PrincipalStore) -> str | None:
    """The fingerprint of the token this principal just authenticated with."""
    for record in store.list():
        if record.name == principal.name:
            return token_fingerprint(record.token_sha256)
    return None
