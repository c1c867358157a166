"""Signed checkpoints of the audit trail: every incident's head (last seq, last seal,
entry count) at one moment, MAC'd with the audit key.

A chain shows an edit, but not a cut at its end: a file whose last entries, or whole
incidents, were deleted is still a set of intact chains. A checkpoint says where each
chain ended, so `bulkhead audit verify` can name what is gone. Each checkpoint carries
every head (not only the ones that moved): the latest one a store holds is enough on its
own, and a checkpoint an anchor missed is superseded by the next.

Checkpoints are numbered and linked (`prev` is the previous checkpoint's MAC), so one
deleted from the middle of the checkpoint file shows too. Deleting the last checkpoints
together with the entries they cover does not show in the local files: that is why each
checkpoint also goes to the anchors (PostgreSQL, the signed webhook), which whoever can
write the state dir cannot reach.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.audit.chain import mac
from orchestrator.audit.shared import numbered_lines

CHECKPOINT_DOMAIN = b"bulkhead-audit-checkpoint\n"
CHECKPOINT_GENESIS = "bulkhead-audit-checkpoints"
# "opened": the first write of a trail that had no checkpoint file; "periodic": a while
# after the trail last changed; "release": an incident was released.
Reason = Literal["opened", "periodic", "release"]


class Head(BaseModel):
    """Where one incident's chain ended: its last entry and how many entries it has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    incident_id: str
    seq: int
    hash: str
    count: int


class Checkpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    number: int
    at: str
    reason: Reason
    released: list[str] = Field(default_factory=list)
    heads: list[Head]
    prev: str
    mac: str = ""

    def canonical(self) -> bytes:
        body = self.model_dump(mode="json", exclude={"mac"})
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign_checkpoint(unsigned: Checkpoint, key: bytes) -> Checkpoint:
    return unsigned.model_copy(update={"mac": checkpoint_mac(unsigned, key)})


def checkpoint_mac(checkpoint: Checkpoint, key: bytes) -> str:
    return mac(key, CHECKPOINT_DOMAIN, checkpoint.canonical())


def checkpoint_is_genuine(checkpoint: Checkpoint, key: bytes) -> bool:
    return checkpoint.mac == checkpoint_mac(checkpoint, key)


def checkpoint_path(audit_path: Path) -> Path:
    """Beside the audit file: `audit.jsonl` → `audit.checkpoints.jsonl`."""
    return audit_path.with_name(f"{audit_path.stem}.checkpoints{audit_path.suffix or '.jsonl'}")


def append_private(path: Path, text: str) -> None:
    """Append, flushed and fsynced, to a file only its owner may read or write (0600).

    The mode is given at creation, so the file is never readable by others even briefly;
    a file made by an older version (0644) is tightened on the next write.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new state dir is private
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
        handle.write(text)
        handle.flush()
        os.fsync(fd)


def read_checkpoints(path: Path, limit: int | None = None) -> Iterator[Checkpoint | str]:
    """Each checkpoint of the file's first `limit` bytes; a line that is not one yields
    its error text."""
    for number, line in numbered_lines(path, limit):
        try:
            yield Checkpoint.model_validate_json(line)
        except ValueError as exc:
            yield f"{path.name} line {number}: not a checkpoint ({exc.__class__.__name__})"
