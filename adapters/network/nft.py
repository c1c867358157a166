"""Running `nft -j` at an enforcement point: this host, or a named network namespace.

By default a call runs in this process through libnftables (libnft.py), in a thread that
lives in the point's namespace. With another `binary`, or without the library, it is a
subprocess: `nft ...` or `ip netns exec NAME nft ...`. Either way a call has a deadline,
and its failure is sorted into what retrying can fix (TransientAdapterError) and what it
cannot (PermanentAdapterError), with a message a responder can act on. The binary's error
text is read in the C locale so the sorting does not depend on the host's language.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from typing import Any

from adapters.base import PermanentAdapterError, TransientAdapterError
from adapters.network import libnft
from adapters.network.listings import SharedReads
from adapters.network.ruleset import FAMILY, TABLE, batch
from adapters.network.topology import EnforcementPoint

# Conditions the kernel reports when another writer got there first or memory is tight.
_TRANSIENT = (
    "Device or resource busy",
    "Resource temporarily unavailable",
    "Interrupted system call",
    "No buffer space available",
    "Cannot allocate memory",
)
_DENIED = ("Operation not permitted", "Permission denied")


class NftConflictError(TransientAdapterError):
    """`create` found the object already there (EEXIST)."""


class NftGoneError(TransientAdapterError):
    """The object is not there (ENOENT): for a listing, the table does not exist yet."""


def _close(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def _feed(fd: int, data: bytes) -> None:
    """Write all of `data` to the pipe and close it; in a thread, as a batch can be larger
    than the pipe's buffer."""
    try:
        with os.fdopen(fd, "wb") as pipe:
            pipe.write(data)
    except BrokenPipeError:
        pass  # nft exited before reading it all: its exit status and stderr say why


async def _talk(
    process: asyncio.subprocess.Process, write_end: int | None, data: bytes | None
) -> tuple[bytes, bytes]:
    if write_end is None or data is None:
        return await process.communicate()
    feeding = asyncio.ensure_future(asyncio.to_thread(_feed, write_end, data))
    out, err = await process.communicate()
    await feeding
    return out, err


class Nft:
    def __init__(
        self,
        *,
        binary: str = "nft",
        ip_binary: str = "ip",
        timeout_s: float = 5.0,
        in_process: bool = True,
    ) -> None:
        """`in_process` uses libnftables when it loads; naming a `binary` other than the
        default means that binary is what should run, so it always runs as a subprocess."""
        self.binary = binary
        self.ip_binary = ip_binary
        self.timeout_s = timeout_s
        use_library = in_process and binary == "nft" and libnft.unavailable() is None
        self.library = libnft.LibNft() if use_library else None
        self._listings: SharedReads[list[dict[str, Any]] | None] = SharedReads()

    def argv(self, point: EnforcementPoint, *args: str) -> list[str]:
        prefix = [self.ip_binary, "netns", "exec", point.netns] if point.netns else []
        return [*prefix, self.binary, "-j", *args]

    def installed(self) -> str | None:
        """Why nft cannot run here at all (None when the library or binaries are there)."""
        if self.library is not None:
            return None
        if shutil.which(self.binary) is None:
            return f"{self.binary} is not installed (Debian: apt-get install nftables)"
        return None

    async def run(self, point: EnforcementPoint, *args: str, stdin: bytes | None = None) -> str:
        if self.library is not None:
            return await self._call(
                self.library, point, stdin.decode() if stdin else " ".join(args)
            )
        argv = self.argv(point, *args)
        env = {**os.environ, "LC_ALL": "C"}
        # Input goes through an OS pipe, not the event loop's PIPE: uvloop (which `bulkhead
        # worker` and `bulkhead up` run on) hands the child a socket for PIPE, and nft
        # reads `-f -` by opening /dev/stdin, which a socket refuses (ENXIO).
        read_end, write_end = os.pipe() if stdin is not None else (None, None)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=read_end if read_end is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        except FileNotFoundError as exc:
            _close(write_end)
            missing = argv[0]
            package = "iproute2" if missing == self.ip_binary else "nftables"
            raise PermanentAdapterError(
                f"{point.describe()}: {missing} is not installed "
                f"(Debian: apt-get install {package})"
            ) from exc
        except PermissionError as exc:
            _close(write_end)
            raise PermanentAdapterError(f"cannot execute {argv[0]}: {exc}") from exc
        finally:
            _close(read_end)
        try:
            out, err = await asyncio.wait_for(_talk(process, write_end, stdin), self.timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
            # A batch is atomic in the kernel: it either landed or not; apply is idempotent.
            raise TransientAdapterError(
                f"{point.describe()}: nft did not answer within {self.timeout_s} s"
            ) from None
        if process.returncode != 0:
            raise _classify(point, err.decode(errors="replace").strip())
        return out.decode()

    async def _call(self, library: libnft.LibNft, point: EnforcementPoint, text: str) -> str:
        try:
            outcome = await asyncio.wait_for(
                asyncio.wrap_future(library.submit(point.netns, text)), self.timeout_s
            )
        except TimeoutError:
            # The thread still finishes the call; a batch lands whole or not at all.
            raise TransientAdapterError(
                f"{point.describe()}: nft did not answer within {self.timeout_s} s"
            ) from None
        except (libnft.NamespaceMissingError, OSError) as exc:
            raise _classify(point, str(exc)) from exc
        if outcome.rc != 0:
            raise _classify(point, outcome.error.strip())
        return outcome.output

    def close(self) -> None:
        """Stop the threads that run calls in-process (a no-op for the subprocess path)."""
        if self.library is not None:
            self.library.close()

    async def list_table(self, point: EnforcementPoint) -> list[dict[str, Any]] | None:
        """The `inet bulkhead` table's objects, or None when the table does not exist.

        Read by a listing that starts after this call does (so it shows every change made
        before the call), shared by the calls waiting for the same point (listings.py):
        every step's verify reads the whole table, and a city-wide containment verifies
        many at once. The list is shared: read it, never change it."""
        return await self._listings.read(point.netns, lambda: self._list_now(point))

    async def _list_now(self, point: EnforcementPoint) -> list[dict[str, Any]] | None:
        try:
            text = await self.run(point, "list", "table", FAMILY, TABLE)
        except NftGoneError:
            return None
        try:
            items: list[dict[str, Any]] = json.loads(text)["nftables"]
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentAdapterError(f"{point.describe()}: nft printed no JSON") from exc
        return [item for item in items if "metainfo" not in item]

    async def apply(self, point: EnforcementPoint, commands: list[dict[str, Any]]) -> None:
        """One atomic batch: all of it lands, or none of it does."""
        await self.run(point, "-f", "-", stdin=json.dumps(batch(commands)).encode())

    async def probe(self, point: EnforcementPoint) -> str | None:
        """None when nft can read (and so, as root, write) at this point; else why not."""
        missing = self.installed()
        if missing is not None:
            return f"{point.describe()}: {missing}"
        try:
            await self.run(point, "list", "tables")
        except (PermanentAdapterError, TransientAdapterError) as exc:
            return str(exc)
        return None


def _classify(point: EnforcementPoint, stderr: str) -> Exception:
    """Every message starts with the enforcement point, then says what to do about it."""
    where = point.describe()
    first = stderr.splitlines()[0] if stderr else "no error text"
    if "exec of" in stderr and "failed" in stderr:
        # `ip netns exec` found the namespace but not the nft binary.
        return PermanentAdapterError(
            f"{where}: nft is not installed (Debian: apt-get install nftables)"
        )
    if "Cannot open network namespace" in stderr:
        return PermanentAdapterError(
            f"{where}: network namespace {point.netns!r} does not exist"
            " (is the network lab up? it needs root)"
        )
    if any(text in stderr for text in _DENIED):
        return PermanentAdapterError(f"{where}: nft needs root or CAP_NET_ADMIN ({first})")
    if "File exists" in stderr:
        return NftConflictError(f"{where}: {first}")
    if "No such file or directory" in stderr:
        return NftGoneError(f"{where}: {first}")
    if any(text in stderr for text in _TRANSIENT):
        return TransientAdapterError(f"{where}: {first}")
    return PermanentAdapterError(f"{where}: nft refused the change: {stderr[:500]}")
