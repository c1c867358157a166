"""When the audit trail's checkpoints are written, and where they go.

A checkpoint (orchestrator/audit/checkpoint.py) is written:
- when a trail without a checkpoint file is first written to ("opened"), so a keyed
  trail always has one from its first entry on;
- at once when a batch holds an `incident.released` entry ("release"): a released
  incident's last entry is the one a quiet cut would take;
- `interval_s` after the trail last changed ("periodic"), from a timer thread, so entries
  that nothing follows are covered too.

Each goes to the checkpoint file beside the audit file, then to every anchor (the
forwarders). A release checkpoint that an anchor refuses raises, so the export activity
is retried and writes it again; a periodic one is retried by the timer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import structlog

from contracts.incident import AuditEntry
from orchestrator.audit.checkpoint import (
    CHECKPOINT_GENESIS,
    Checkpoint,
    Head,
    Reason,
    append_private,
    checkpoint_is_genuine,
    checkpoint_path,
    sign_checkpoint,
)
from orchestrator.audit.shared import Tail, trail_lock
from orchestrator.audit.sink import AuditForwarder

log = structlog.get_logger(__name__)
RELEASED_KIND = "incident.released"


class HeadSource(Protocol):
    """The trail being checkpointed (JsonlAuditSink)."""

    path: Path

    def heads(self) -> list[Head]: ...


def _utc_now() -> str:
    return datetime.now(UTC).isoformat()


class Checkpointer:
    def __init__(
        self,
        trail: HeadSource,
        *,
        key: bytes,
        anchors: Sequence[AuditForwarder] = (),
        interval_s: float = 60.0,
        clock: Callable[[], str] = _utc_now,
    ) -> None:
        self.path = checkpoint_path(trail.path)
        self._trail = trail
        self._key = key
        self._anchors = list(anchors)
        self._interval_s = interval_s
        self._clock = clock
        # Numbering and linking are serial: one checkpoint at a time in this process, and
        # the trail's lock orders them with other workers' (orchestrator/audit/shared.py).
        self._lock = threading.Lock()
        self._trail_lock = trail_lock(trail.path)
        self._tail = Tail(self.path)
        self._last: Checkpoint | None = None
        # The newest checkpoint some anchor has not accepted yet (sent again on the next tick).
        self._unanchored: Checkpoint | None = None
        self._timer: threading.Timer | None = None
        self._timer_lock = threading.Lock()

    def after_write(self, sealed: Sequence[AuditEntry]) -> None:
        released = sorted({e.incident_id for e in sealed if e.kind == RELEASED_KIND})
        if released:
            self.write("release", released=released)
        elif not self.path.exists():
            self.write("opened")
        else:
            self._schedule()

    def write(self, reason: Reason, *, released: Sequence[str] = ()) -> Checkpoint | None:
        """Write a checkpoint of every head now and anchor it; a periodic one only when
        something changed since the last (or an anchor still lacks the last)."""
        with self._lock:
            with self._trail_lock:
                last = self._latest()
                heads = self._trail.heads()
                if reason == "periodic" and last is not None and last.heads == heads:
                    if self._unanchored is None:
                        return None
                    checkpoint = self._unanchored
                else:
                    checkpoint = self._signed(reason, released, heads, last)
                    text = "\n" * self._tail.torn + checkpoint.model_dump_json() + "\n"
                    append_private(self.path, text)
                    self._tail.skip(len(text.encode()))
                    self._last = checkpoint
            # Anchors are reached over the network: other workers' writes need not wait.
            self._anchor(checkpoint)
            return checkpoint

    def close(self) -> None:
        """Stop the timer and checkpoint what it would have (e.g. at worker shutdown)."""
        with self._timer_lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self.write("periodic")

    def _signed(
        self, reason: Reason, released: Sequence[str], heads: list[Head], last: Checkpoint | None
    ) -> Checkpoint:
        unsigned = Checkpoint(
            number=last.number + 1 if last is not None else 1,
            at=self._clock(),
            reason=reason,
            released=list(released),
            heads=heads,
            prev=last.mac if last is not None else CHECKPOINT_GENESIS,
        )
        return sign_checkpoint(unsigned, self._key)

    def _latest(self) -> Checkpoint | None:
        """The last genuine checkpoint in the file, whichever worker wrote it (under the
        trail's lock): the one remembered, or a later one read since."""
        if self._tail.replaced():
            self._last = None
        for line in self._tail.lines():
            try:
                checkpoint = Checkpoint.model_validate_json(line)
            except ValueError:
                continue  # `bulkhead audit verify` names the line
            if checkpoint_is_genuine(checkpoint, self._key):
                self._last = checkpoint
        return self._last

    def _anchor(self, checkpoint: Checkpoint) -> None:
        self._unanchored = checkpoint
        for anchor in self._anchors:
            anchor.send_checkpoint(checkpoint)  # raises AuditExportError; the caller retries
        self._unanchored = None

    def _schedule(self) -> None:
        with self._timer_lock:
            if self._timer is not None:
                return
            self._timer = threading.Timer(self._interval_s, self._tick)
            self._timer.daemon = True  # never holds a process open
            self._timer.start()

    def _tick(self) -> None:
        with self._timer_lock:
            self._timer = None
        try:
            self.write("periodic")
        except Exception:  # a timer thread has nobody to raise to: log, try again later
            log.warning("audit checkpoint not written or not anchored; retrying", exc_info=True)
            self._schedule()
