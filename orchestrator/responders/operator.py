"""The local operator credential: read access for the CLI on the machine running `up`.

`bulkhead up` makes a principal with the viewer role only and writes its token into the
state dir (0600), so `bulkhead incidents ls` works in a second terminal without exporting
a token. It can read, never approve: the approval policy grants viewers nothing, and the
principal is re-created (new token) on every `up`, so a stale copy stops working.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from orchestrator.config import Settings
from orchestrator.responders.principals import PrincipalError, PrincipalStore

OPERATOR_NAME = "local-operator"
OPERATOR_ROLE = "viewer"
OPERATOR_TOKEN_FILE = "operator-token"  # noqa: S105 - a file name, not a secret


def operator_token_path(settings: Settings) -> Path:
    return settings.state_dir / OPERATOR_TOKEN_FILE


def ensure_operator(settings: Settings) -> Path:
    """(Re)create the local operator and write its token, 0600; return the file's path."""
    store = PrincipalStore(settings.principals_path)
    with contextlib.suppress(PrincipalError):
        store.remove(OPERATOR_NAME)
    token = store.add(OPERATOR_NAME, [OPERATOR_ROLE])
    path = operator_token_path(settings)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return path


def operator_token(settings: Settings) -> str | None:
    """The local operator's token when this machine runs `up` on this state dir."""
    try:
        token = operator_token_path(settings).read_text().strip()
    except OSError:
        return None
    return token or None
