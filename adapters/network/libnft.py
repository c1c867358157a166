"""nftables in this process, through libnftables (the library the `nft` binary wraps).

A containment step reads its enforcement point's table to plan, writes one batch, and
reads it back to verify. Forking `ip netns exec NAME nft` for each of those cost 11-16 ms
in a busy worker (see docs/PERFORMANCE.md, session 9); a call here costs about one.

Network namespaces belong to threads, not processes: each enforcement point gets one
thread that enters the point's namespace (setns) and keeps a libnftables context there.
Only that thread ever uses the context (libnftables contexts are not thread-safe), so
calls at one point run one at a time and points run side by side. Before every call the
thread checks that /run/netns/NAME is still the namespace it is in: a namespace deleted
and created again under the same name (a lab restart) must not leave us writing rules
into the old one, which our thread alone would keep alive; and once the name is gone,
the thread goes back to the process's own namespace and lets the deleted one go.

The text a call prints and its error text are the same as the binary's stdout and
stderr, so `nft.py` sorts failures the same way for both.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

# From <nftables/libnftables.h>.
_CTX_DEFAULT = 0
_OUTPUT_JSON = 1 << 4
# From <sched.h>.
_CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")  # where `ip netns add` pins a namespace by name
# The process's main thread's namespace: no thread of ours ever leaves it but the workers.
HOME_NETNS = Path("/proc/self/ns/net")
_LIBRARY = "libnftables.so.1"


class NamespaceMissingError(Exception):
    """/run/netns/NAME does not exist (the text matches `ip netns exec`'s)."""


@dataclass(frozen=True)
class Outcome:
    """What one command printed: `output` on success, `error` (rc != 0) otherwise."""

    rc: int
    output: str
    error: str


def _load() -> ctypes.CDLL | None:
    try:
        lib = ctypes.CDLL(_LIBRARY)
    except OSError:
        return None
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
    lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
    lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
    lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    return lib


_lib = _load()
_libc = ctypes.CDLL(None, use_errno=True)


def unavailable() -> str | None:
    """Why nftables cannot run in this process (None when it can)."""
    if _lib is None:
        return f"{_LIBRARY} is not installed (Debian: apt-get install libnftables1)"
    return None


def _inode(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_dev, info.st_ino


class _Context:
    """A libnftables context in the calling thread's namespace; one thread only."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        self.handle = lib.nft_ctx_new(_CTX_DEFAULT)
        if not self.handle:
            raise MemoryError("nft_ctx_new failed")
        lib.nft_ctx_output_set_flags(self.handle, _OUTPUT_JSON)
        lib.nft_ctx_buffer_output(self.handle)
        lib.nft_ctx_buffer_error(self.handle)

    def run(self, text: str) -> Outcome:
        rc = self.lib.nft_run_cmd_from_buffer(self.handle, text.encode())
        output = self.lib.nft_ctx_get_output_buffer(self.handle) or b""
        error = self.lib.nft_ctx_get_error_buffer(self.handle) or b""
        return Outcome(rc, output.decode(errors="replace"), error.decode(errors="replace"))

    def close(self) -> None:
        self.lib.nft_ctx_free(self.handle)


class _Point:
    """The thread (and its context) for one namespace, or for this host's (`netns` None)."""

    def __init__(self, lib: ctypes.CDLL, netns: str | None) -> None:
        self.lib = lib
        self.netns = netns
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"nft-{netns}")
        self.entered: tuple[int, int] | None = None  # which namespace the thread is in
        self.context: _Context | None = None

    def submit(self, text: str) -> Future[Outcome]:
        return self.thread.submit(self._run, text)

    def _run(self, text: str) -> Outcome:
        if self.netns is not None:
            self._enter(NETNS_DIR / self.netns)
        if self.context is None:
            self.context = _Context(self.lib)
        return self.context.run(text)

    def _enter(self, path: Path) -> None:
        try:
            wanted = _inode(path)
        except FileNotFoundError:
            if self.entered is not None:
                # Back home, so our thread alone does not keep a deleted namespace alive.
                self._switch(HOME_NETNS)
                self.entered = None
            raise NamespaceMissingError(
                f'Cannot open network namespace "{self.netns}": No such file or directory'
            ) from None
        if wanted != self.entered:
            self._switch(path)
            self.entered = wanted

    def _switch(self, path: Path) -> None:
        """This thread into the namespace at `path`, dropping a context opened elsewhere."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if _libc.setns(fd, _CLONE_NEWNET) != 0:
                errno = ctypes.get_errno()
                raise PermissionError(errno, f"setns {path}: {os.strerror(errno)}")
        finally:
            os.close(fd)
        # The context's netlink socket was opened in the namespace we just left.
        if self.context is not None:
            self.context.close()
            self.context = None

    def close(self) -> None:
        self.thread.shutdown(wait=False)


class LibNft:
    """Runs nft commands (as text or a JSON batch) at named namespaces, in-process."""

    def __init__(self) -> None:
        if _lib is None:
            raise RuntimeError(unavailable())
        self._lib = _lib
        self._points: dict[str | None, _Point] = {}
        self._lock = threading.Lock()

    def submit(self, netns: str | None, text: str) -> Future[Outcome]:
        with self._lock:
            point = self._points.get(netns)
            if point is None:
                point = self._points[netns] = _Point(self._lib, netns)
        return point.submit(text)

    def close(self) -> None:
        with self._lock:
            for point in self._points.values():
                point.close()
            self._points.clear()
