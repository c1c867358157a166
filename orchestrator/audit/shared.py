"""One audit trail written by several worker processes on one host (one state dir).

Each entry's seal links to the previous entry of its incident, and each checkpoint to the
previous checkpoint. An incident's workflow tasks move between workers (a restart, a
second worker on the task queue), so a worker must continue what the others appended:
- `TrailLock`: the writers of one trail take turns, threads of a process by a lock and
  processes by `flock` on `<trail>.lock`, so a read of the file's end and the append
  after it happen with no other writer in between;
- `Tail`: the whole lines appended to a file since this process last looked, by anyone.

`flock` holds among the processes of one host; workers on separate hosts each keep their
own trail (docs/DEPLOYMENT.md).
"""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

_LOCKS: weakref.WeakValueDictionary[str, TrailLock] = weakref.WeakValueDictionary()
_LOCKS_GUARD = threading.Lock()


class TrailLock:
    """Re-entrant within a thread: the checkpointer reads the heads while it holds it.

    The lock file is opened by the outermost `with` and closed by its end (closing it
    releases the `flock`), so no descriptor stays open per trail.
    """

    def __init__(self, trail: Path) -> None:
        self.path = lock_path(trail)
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def __enter__(self) -> TrailLock:
        self._thread_lock.acquire()
        try:
            if self._depth == 0:
                fd = _open_lock_file(self.path)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
                self._fd = fd
        except BaseException:
            self._thread_lock.release()
            raise
        self._depth += 1
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._thread_lock.release()


def _open_lock_file(path: Path) -> int:
    """The lock file, made 0600 on first use (its folder too, on a new state dir): a
    `mkdir` only then, not on every batch."""
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
    try:
        return os.open(path, flags, 0o600)
    except FileNotFoundError:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return os.open(path, flags, 0o600)


def lock_path(trail: Path) -> Path:
    return trail.with_name(trail.name + ".lock")


def trail_lock(trail: Path) -> TrailLock:
    """This process's one lock for `trail` (two `flock`s of one process on one file would
    wait for each other)."""
    key = str(trail.resolve())
    with _LOCKS_GUARD:
        lock = _LOCKS.get(key)
        if lock is None:
            lock = _LOCKS[key] = TrailLock(trail)
        return lock


class Tail:
    """Where this process has read a file up to. Read under the trail's lock.

    A line without its newline yet (a writer that died mid-write) is not read: `torn`
    says one is there, and the next append starts on a line of its own.
    """

    BLOCK = 1 << 20  # a long trail is read a block at a time, never whole into memory

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._inode: int | None = None
        self._torn = 0  # bytes of a line without its newline, at the end of the file
        self._size = -1  # the file's size when `replaced` last looked

    @property
    def torn(self) -> bool:
        return self._torn > 0

    def replaced(self) -> bool:
        """Whether the file was replaced, cut or removed since the last read: reading then
        starts again from its beginning."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            gone = self._inode is not None
            self._offset, self._inode, self._torn, self._size = 0, None, 0, 0
            return gone
        self._size = stat.st_size
        if self._inode is not None and (stat.st_ino != self._inode or stat.st_size < self._offset):
            self._offset, self._torn, self._inode = 0, 0, stat.st_ino
            return True
        self._inode = stat.st_ino
        return False

    def lines(self) -> Iterator[str]:
        """The whole lines added since the last read (call `replaced` first)."""
        if self._size == self._offset + self._torn:
            return  # nothing new: the usual case for a worker writing alone
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return
        with handle:
            self._inode = os.fstat(handle.fileno()).st_ino
            handle.seek(self._offset)
            carried = b""
            while block := handle.read(self.BLOCK):
                *lines, carried = (carried + block).split(b"\n")
                for line in lines:
                    # Split on newlines only: JSON leaves U+2028 and U+0085 raw inside
                    # strings, and str.splitlines would cut an entry there.
                    self._offset += len(line) + 1
                    yield line.decode("utf-8", errors="replace")
            self._torn = len(carried)

    def skip(self, appended: int) -> None:
        """This process appended `appended` bytes after the end of the file (under the
        lock, so nobody else did): no need to read them back."""
        self._offset += self._torn + appended
        self._torn = 0


def settled_sizes(trail: Path, *beside: Path) -> tuple[int, ...]:
    """The sizes of `trail` and of files written under its lock (its checkpoints), taken
    at one moment when no writer is mid-append: a reader that stops there reads whole
    lines only, and checkpoints that name nothing past the entries it reads.

    A shared `flock`, on a lock file that is never created here: a reader changes
    nothing, and a trail no worker ever locked has no writer to wait for. Without the
    right to open it (an auditor who may read the state dir, not write it): the sizes now.
    """

    def sizes() -> tuple[int, ...]:
        return tuple(path.stat().st_size if path.is_file() else 0 for path in (trail, *beside))

    try:
        fd = os.open(lock_path(trail), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:  # no lock file, or not ours to open
        return sizes()
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        return sizes()
    finally:
        os.close(fd)


def numbered_lines(path: Path, limit: int | None = None) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of the file's first `limit` bytes (all without one), blank
    lines left out; split on newlines only."""
    read = 0
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            read += len(line)
            if limit is not None and read > limit:
                return
            if line.strip():
                yield number, line
