"""Where events go: a webhook signed with Standard Webhooks, and syslog (RFC 5424 over TCP,
octet-counted as RFC 6587 frames it, TLS as RFC 5425 when asked).

A sink takes a batch of stored events (each the OCSF document's JSON) and either takes
all of them or raises: SinkDownError when it could not be reached or answered that it
cannot take anything now (the sender waits and tries the batch again), EventRejectedError
when it refused this one event (the sender retries that one on its own schedule, so it
holds no other event up).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from orchestrator.ingest.signatures import SECRET_PREFIX, sign

WEBHOOK_TIMEOUT_S = 10.0
SYSLOG_TIMEOUT_S = 10.0
SYSLOG_BATCH = 50  # events per connection
SYSLOG_PORT, SYSLOG_TLS_PORT = 514, 6514
APP_NAME = "bulkhead"
FACILITY_LOG_AUDIT = 13  # RFC 5424 facility 13, "log audit"
# RFC 5424 severities by the event's OCSF status_id: a containment done is a notice, a
# failure an error, an escalation (Other) a warning; anything else informational.
SEVERITY_BY_STATUS = {1: 5, 2: 3, 99: 4}
SEVERITY_INFORMATIONAL = 6
# Answers that mean "not now" rather than "never this event".
RETRY_LATER = frozenset({408, 425, 429})


class SinkDownError(Exception):
    """The sink took nothing; try the same events again later."""


class EventRejectedError(Exception):
    """The sink refused this event (a 4xx answer)."""


@dataclass(frozen=True)
class Stored:
    event_id: str
    body: bytes  # the OCSF document, JSON


class Sink(Protocol):
    name: str
    batch: int

    async def send(self, events: Sequence[Stored]) -> None: ...

    async def close(self) -> None: ...


class WebhookSink:
    """One POST per event, the body the OCSF document; `webhook-id` is the event's stable id,
    so a receiver drops a repeat as Standard Webhooks receivers do."""

    name = "webhook"
    batch = 1

    def __init__(self, url: str, secret: str, *, timeout_s: float = WEBHOOK_TIMEOUT_S) -> None:
        check_secret(secret)
        self.url = url
        self._secret = secret
        self._http = httpx.AsyncClient(timeout=timeout_s)
        parts = urlsplit(url)
        self._shown = f"{parts.scheme}://{parts.netloc}{parts.path}"  # never the query

    async def send(self, events: Sequence[Stored]) -> None:
        for event in events:
            headers = sign(
                event.body, self._secret, msg_id=event.event_id, timestamp=int(time.time())
            )
            headers["content-type"] = "application/json"
            try:
                answer = await self._http.post(self.url, content=event.body, headers=headers)
            except httpx.HTTPError as exc:
                raise SinkDownError(f"{self._shown} unreachable: {exc!r}") from exc
            status = answer.status_code
            if status < 300:
                continue
            if status >= 500 or status in RETRY_LATER:
                raise SinkDownError(f"{self._shown} answered {status}")
            raise EventRejectedError(f"{self._shown} answered {status}")

    async def close(self) -> None:
        await self._http.aclose()


class SyslogSink:
    """RFC 5424 messages over TCP, one connection per batch, each message framed as
    `<octet count> SP <message>` (RFC 6587 octet counting; RFC 5425 frames TLS the same).

    Plain TCP has no acknowledgement, so the sender half-closes the connection and waits
    for the receiver to close its side: the receiver then read every byte sent before it
    (TCP keeps order), and a receiver that died first shows as a reset, and the batch is
    sent again. TLS cannot half-close; there a clean close counts.
    """

    name = "syslog"
    batch = SYSLOG_BATCH

    def __init__(
        self,
        address: str,
        *,
        tls: bool = False,
        ca_file: Path | None = None,
        timeout_s: float = SYSLOG_TIMEOUT_S,
        hostname: str | None = None,
    ) -> None:
        self._tls = tls or ca_file is not None  # a CA is only ever given to be used
        self.host, self.port = parse_address(address, SYSLOG_TLS_PORT if self._tls else SYSLOG_PORT)
        self._context = ssl.create_default_context(cafile=ca_file) if self._tls else None
        self._timeout_s = timeout_s
        self.hostname = _header_field(hostname or socket.gethostname(), 255)

    async def send(self, events: Sequence[Stored]) -> None:
        frames = b"".join(
            frame(rfc5424(json.loads(e.body), hostname=self.hostname)) for e in events
        )
        try:
            await asyncio.wait_for(self._deliver(frames), self._timeout_s)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise SinkDownError(f"syslog {self.host}:{self.port}: {exc!r}") from exc

    async def _deliver(self, frames: bytes) -> None:
        server_name = self.host if self._context is not None else None
        reader, writer = await asyncio.open_connection(
            self.host, self.port, ssl=self._context, server_hostname=server_name
        )
        try:
            writer.write(frames)
            await writer.drain()
            if self._context is None:
                writer.write_eof()
                while await reader.read(4096):
                    pass  # a syslog receiver sends nothing; read to its close
        finally:
            writer.close()
            await writer.wait_closed()

    async def close(self) -> None:
        return None


def frame(message: bytes) -> bytes:
    """RFC 6587 section 3.4.1: MSG-LEN SP SYSLOG-MSG."""
    return b"%d %s" % (len(message), message)


def rfc5424(event: dict[str, Any], *, hostname: str) -> bytes:
    """`<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [origin ...] MSG`, MSG the event's
    JSON in ASCII (non-ASCII escaped), so it needs no BOM and every parser reads it.

    The timestamp is the event's time, PROCID is nil: a resent event is the same message.
    """
    severity = SEVERITY_BY_STATUS.get(event.get("status_id", 0), SEVERITY_INFORMATIONAL)
    pri = FACILITY_LOG_AUDIT * 8 + severity
    moment = datetime.fromtimestamp(event["time"] / 1000, tz=UTC)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    msgid = f"ocsf-{event['class_uid']}"
    product = event["metadata"]["product"]
    origin = f'[origin software="{_sd(product["name"])}" swVersion="{_sd(product["version"])}"]'
    body = json.dumps(event, ensure_ascii=True, separators=(",", ":"), sort_keys=True)
    return f"<{pri}>1 {stamp} {hostname} {APP_NAME} - {msgid} {origin} {body}".encode("ascii")


def parse_address(address: str, default_port: int) -> tuple[str, int]:
    """`host:port`, `[v6 address]:port`, or a host alone (the default port)."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.removeprefix(":")
    elif address.count(":") == 1:
        host, _, port = address.partition(":")
    else:
        host, port = address, ""
    if not host or (port and not port.isdigit()):
        raise ValueError(f"events_syslog_address {address!r} is not host:port")
    return host, int(port) if port else default_port


def check_secret(secret: str) -> None:
    """A Standard Webhooks secret: `whsec_` and a base64 key of 16 bytes or more."""
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not secret.startswith(SECRET_PREFIX) or len(key) < 16:
        raise ValueError("events_webhook_secret is not whsec_<base64 key of 16 bytes or more>")


def _sd(value: str) -> str:
    """An RFC 5424 PARAM-VALUE: '"', '\\' and ']' escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _header_field(value: str, limit: int) -> str:
    """A header field is printable US-ASCII without spaces, or nil ("-")."""
    cleaned = "".join(c if 33 <= ord(c) <= 126 else "-" for c in value)[:limit]
    return cleaned or "-"
