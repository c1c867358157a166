"""uvicorn as Bulkhead serves it: deadlines on slow clients, proxies trusted only if named.

uvicorn's keep-alive timer starts only after a response, so a client that opens a socket
and trickles its request headers a byte at a time holds the connection for ever (a probe
kept 200 such sockets open). `HeaderDeadline` gives every request a deadline for its
headers, from the connection's start or the previous response's end; a late client is
disconnected. Body deadlines are the request middleware's (orchestrator.api.limits).

The parser is httptools (C, llhttp), not h11: under an alert storm h11's pure-Python
parsing was a tenth of the API's CPU (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import asyncio

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from orchestrator.config import Settings


class HeaderDeadline(HttpToolsProtocol):
    header_timeout_s: float = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._disarm()  # this request's headers arrived in full

    def on_response_complete(self) -> None:
        self._arm()  # before: the parent may start a pipelined request right away
        super().on_response_complete()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout_s, self._late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _late(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def uvicorn_config(app: FastAPI, settings: Settings, host: str, port: int) -> uvicorn.Config:
    protocol = type(
        "BulkheadHttp", (HeaderDeadline,), {"header_timeout_s": settings.http_header_timeout_s}
    )
    trusted = [str(network) for network in settings.trusted_proxies]
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_keep_alive=max(1, round(settings.http_keepalive_timeout_s)),
        # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise: a local
        # process could then pose as any address an IP allowlist admits.
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or [],
        server_header=False,
    )
