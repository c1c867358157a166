"""Where committed workflow histories live, and which code they were recorded from."""

from __future__ import annotations

import hashlib
from pathlib import Path

HISTORIES = Path(__file__).resolve().parent / "workflows" / "histories"
WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"


def source_hash() -> str:
    """The version of the workflow code: a hash of every module under workflows/."""
    digest = hashlib.sha256()
    for path in sorted(WORKFLOWS.rglob("*.py")):
        digest.update(path.relative_to(WORKFLOWS).as_posix().encode() + b"\0")
        digest.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return digest.hexdigest()[:12]
