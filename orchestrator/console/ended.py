"""Logged-out console sessions, shared by every API process of one deployment.

Session cookies are signed, not stored, so a logout has to be remembered for as long as
the cookie could still be presented. The list lives in the state dir beside the signing
secret (`console-ended-sessions.json`, 0600): every process that accepts a cookie also
sees its logout, and so does a process started after it. Each entry expires with the
longest-lived cookie it could refuse, and expired entries are dropped at each write.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import structlog

ENDED_FILE = "console-ended-sessions.json"
# Writers take this lock so that two processes logging out at once both keep their entry.
LOCK_FILE = ".console-ended-sessions.lock"

log = structlog.get_logger(__name__)


class EndedSessions:
    """Session ids and when their refusal may be forgotten (epoch seconds), re-read
    whenever another process replaced the file."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._stamp: tuple[int, int, int] | None = None
        self._until: dict[str, float] = {}

    def holds(self, sid: str) -> bool:
        """True while `sid` was logged out and its cookie could still be presented."""
        self._refresh()
        until = self._until.get(sid)
        return until is not None and until > self._clock()

    def add(self, sid: str, until: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(self.path.with_name(LOCK_FILE)):
            self._stamp = None
            self._refresh()  # under the lock: the latest list, so no other logout is lost
            now = self._clock()
            kept = {s: t for s, t in self._until.items() if t > now}
            kept[sid] = max(until, kept.get(sid, until))
            _replace(self.path, json.dumps({"ended": kept}, sort_keys=True))
            self._until = kept

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._until = None, {}
            return
        # Writers replace the file, so the inode changes even within one mtime tick.
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if stamp == self._stamp:
            return
        try:
            self._until = _parse(self.path.read_text())
        except (OSError, ValueError, TypeError) as exc:
            # Keep what this process knew; the next logout rewrites the file whole.
            log.warning("console.ended_sessions_unreadable", path=str(self.path), error=str(exc))
        self._stamp = stamp


def _parse(text: str) -> dict[str, float]:
    document = json.loads(text)
    ended = document.get("ended") if isinstance(document, dict) else None
    if not isinstance(ended, dict):
        raise TypeError("no `ended` object")
    return {
        str(sid): float(until)
        for sid, until in ended.items()
        if isinstance(until, int | float) and math.isfinite(until)
    }


def _replace(path: Path, text: str) -> None:
    """Write whole or not at all: readers never see half a list."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".console-ended-")  # 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())  # a logout survives a crash right after it
        Path(temp).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(temp).unlink()
        raise


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
