"""The events' durable state in the state dir: how far the audit trail has been read, and
each sink's queue of events not yet delivered.

```
<state_dir>/events/cursor.json        {"offset": bytes of audit.jsonl read, "inode": ...}
<state_dir>/events/<sink>/<id>.json   an event the sink has not taken yet (its OCSF JSON)
```

An event is written to every sink's queue (fsynced, then renamed into place) before the
cursor moves past the entry it came from, and removed from a queue only once that sink
took it: a crash in between repeats an event, with the same id, and never loses one.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CURSOR_FILE = "cursor.json"


@dataclass(frozen=True)
class Queued:
    event_id: str
    order: tuple[int, str, int]  # event time, incident, audit seq: the order to deliver in
    path: Path


@dataclass(frozen=True)
class Cursor:
    offset: int
    inode: int | None


class Outbox:
    """`keys` says an item's id and delivery order: OCSF events' by default; the
    notifications (orchestrator/notify/) queue their own messages here too."""

    def __init__(
        self,
        root: Path,
        sinks: list[str],
        keys: Callable[[dict[str, Any]], tuple[str, tuple[int, str, int]]] | None = None,
    ) -> None:
        self.root = root
        self.sinks = list(sinks)
        self._keys = keys or ocsf_keys
        self._queues: dict[str, dict[str, Queued]] = {sink: {} for sink in self.sinks}

    def load(self) -> None:
        """Index what the queues hold (after a restart, or when this worker takes over
        from another: what was not delivered)."""
        self._queues = {sink: {} for sink in self.sinks}
        for sink in self.sinks:
            folder = self._folder(sink)
            for path in folder.glob("*.json"):
                try:
                    queued = self._queued(path, json.loads(path.read_bytes()))
                except FileNotFoundError:
                    continue  # delivered meanwhile (the worker that led until now)
                except (OSError, ValueError, KeyError, TypeError):
                    # Half-written files never get here (written beside, then renamed);
                    # anything else unreadable is set aside, not retried forever.
                    path.rename(path.with_suffix(".unreadable"))
                    continue
                self._queues[sink][queued.event_id] = queued

    def enqueue(self, event: dict[str, Any], sinks: list[str] | None = None) -> int:
        """Put the event in every queue (or those of `sinks`) that does not hold it yet;
        how many took it."""
        body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
        added = 0
        event_id = self._keys(event)[0]
        for sink in self.sinks if sinks is None else sinks:
            if event_id in self._queues[sink]:
                continue
            path = self._folder(sink) / f"{event_id}.json"
            write_durably(path, body)
            self._queues[sink][event_id] = self._queued(path, event)
            added += 1
        return added

    def queued(self, sink: str) -> list[Queued]:
        return sorted(self._queues[sink].values(), key=lambda q: q.order)

    def depth(self, sink: str) -> int:
        return len(self._queues[sink])

    def delivered(self, sink: str, event_id: str) -> None:
        queued = self._queues[sink].pop(event_id, None)
        if queued is not None:
            queued.path.unlink(missing_ok=True)

    def cursor(self) -> Cursor | None:
        path = self.root / CURSOR_FILE
        try:
            document = json.loads(path.read_text())
            return Cursor(offset=int(document["offset"]), inode=document.get("inode"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return Cursor(offset=0, inode=None)  # unreadable: read again; queues dedupe

    def save_cursor(self, cursor: Cursor) -> None:
        body = json.dumps({"offset": cursor.offset, "inode": cursor.inode}).encode()
        write_durably(self.root / CURSOR_FILE, body)

    def _queued(self, path: Path, event: dict[str, Any]) -> Queued:
        event_id, order = self._keys(event)
        return Queued(event_id=event_id, order=order, path=path)

    def _folder(self, sink: str) -> Path:
        folder = self.root / sink
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return folder


def ocsf_keys(event: dict[str, Any]) -> tuple[str, tuple[int, str, int]]:
    bulkhead = event["unmapped"]["bulkhead"]
    order = (int(event["time"]), str(bulkhead["incident_id"]), int(bulkhead["audit_seq"]))
    return str(event["metadata"]["uid"]), order


def write_durably(path: Path, body: bytes) -> None:
    """Written beside, fsynced, renamed into place, the directory fsynced: the file is
    there whole or not at all, also after a power cut. Private to the owner (0600)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)
    with contextlib.suppress(OSError):  # not every filesystem fsyncs a directory
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
