"""Where committed workflow histories live, and which code they were recorded from."""

from __future__ import annotations

import hashlib
from pathlib import Path

HISTORIES = Path(__file__).resolve().parent / "workflows" / "histories"
ROOT = Path(__file__).resolve().parent.parent
# What a history's replay depends on: the workflow code and the payload types it records
# (findings, decisions, plans, receipts and incident state are in contracts/).
SOURCES = ("workflows/**/*.py", "contracts/**/*.py")


def source_hash() -> str:
    """The version of the workflow code and of the payloads it keeps in history."""
    digest = hashlib.sha256()
    paths = {p for pattern in SOURCES for p in ROOT.glob(pattern)}
    for path in sorted(paths):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
        digest.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return digest.hexdigest()[:12]
