"""A TLS-terminating loopback proxy in front of the Temporal dev server, which has no TLS.

The proxy listens on 127.0.0.1 with a certificate the test made, optionally requires a
client certificate (mTLS), and relays each connection to the dev server in the clear:
byte for byte by default, or through a bridge that understands HTTP/2 (tests/grpcgate.py,
which checks each call's `authorization` metadata). It records every handshake, so a
test can tell a connection the proxy refused from one that never reached it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from certs import Issued, TestCA

Bridge = Callable[
    [asyncio.StreamReader, asyncio.StreamWriter, asyncio.StreamReader, asyncio.StreamWriter],
    Awaitable[None],
]
_CHUNK = 65536


@dataclass(frozen=True)
class Handshake:
    """One client's TLS handshake: who it was (client certificate CN) or why it failed."""

    peer: str | None
    error: str | None = None


def server_context(ca: TestCA, server: Issued, *, client_certs: bool) -> ssl.SSLContext:
    """The proxy's TLS: `server` presented, HTTP/2 by ALPN (gRPC clients insist on it),
    and with `client_certs` a certificate from `ca` required of every client."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server.cert, server.key)
    context.set_alpn_protocols(["h2"])
    if client_certs:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(ca.pem)
    return context


def _common_name(peercert: object) -> str | None:
    if not isinstance(peercert, dict):
        return None
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    while data := await source.read(_CHUNK):
        sink.write(data)
        await sink.drain()


async def relay(
    down_reader: asyncio.StreamReader,
    down_writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    """Bytes both ways until either side closes."""
    pipes = {
        asyncio.ensure_future(_pipe(down_reader, up_writer)),
        asyncio.ensure_future(_pipe(up_reader, down_writer)),
    }
    try:
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pipe in pipes:
            pipe.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)


class TlsProxy:
    """`async with TlsProxy(upstream, context) as proxy:` serves on proxy.address."""

    def __init__(self, upstream: str, context: ssl.SSLContext, bridge: Bridge = relay) -> None:
        host, _, port = upstream.rpartition(":")
        self._upstream = (host, int(port))
        self._context = context
        self._bridge = bridge
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self.handshakes: list[Handshake] = []
        self._refused = asyncio.Event()
        self.upstream_connections = 0
        # What went wrong inside the proxy itself (a bridge bug, not a refusal): tests
        # assert it stays empty, so a proxy fault cannot pass for a client's.
        self.errors: list[str] = []

    @property
    def address(self) -> str:
        assert self._server is not None, "the proxy is not started"
        port = self._server.sockets[0].getsockname()[1]
        return f"127.0.0.1:{port}"

    async def __aenter__(self) -> TlsProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._connections:
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def refused(self) -> list[Handshake]:
        return [h for h in self.handshakes if h.error is not None]

    async def first_refusal(self, timeout_s: float = 5.0) -> Handshake:
        """The first handshake the proxy refused, once it has (a client may notice first)."""
        async with asyncio.timeout(timeout_s):
            await self._refused.wait()
        return self.refused[0]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except Exception as exc:  # noqa: BLE001 - recorded for the test to assert on
            self.errors.append(repr(exc))
        finally:
            self._connections.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # TLS is started by hand (not start_server(ssl=...)) so a failed handshake is seen
        # here and recorded, instead of vanishing into asyncio's debug log.
        try:
            await writer.start_tls(self._context)
        except (ssl.SSLError, OSError) as exc:
            self.handshakes.append(Handshake(None, str(exc)))
            self._refused.set()
            return
        self.handshakes.append(Handshake(_common_name(writer.get_extra_info("peercert"))))
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        self.upstream_connections += 1
        try:
            await self._bridge(reader, writer, up_reader, up_writer)
        finally:
            up_writer.close()
            with contextlib.suppress(OSError):
                await up_writer.wait_closed()
