"""An API-key gate for the TLS proxy: HTTP/2 terminated, each gRPC call's metadata read.

gRPC metadata travels as HTTP/2 headers, HPACK-compressed against a table both ends of
one connection keep, so a relay cannot look at one request's headers (or drop one
request) without decoding, and re-encoding, the whole connection. The gate therefore
speaks HTTP/2 on both sides with `h2`: each client stream becomes an upstream stream,
data and flow control are passed on, and a call whose `authorization` is not
`Bearer <key>` is answered UNAUTHENTICATED (gRPC status 16) and never sent upstream,
the way a Temporal Cloud endpoint refuses a bad API key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    RequestReceived,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
)
from h2.exceptions import ProtocolError

UNAUTHENTICATED = "16"  # https://grpc.github.io/grpc/core/md_doc_statuscodes.html
_CHUNK = 65536


@dataclass(frozen=True)
class Call:
    """One gRPC call as the gate saw it."""

    path: str  # /temporal.api.workflowservice.v1.WorkflowService/<Method>
    authorization: str | None
    refused: bool


@dataclass(frozen=True)
class _Headers:
    headers: list[tuple[str, str]]
    end: bool


class _End:
    """END_STREAM after everything queued before it."""


Item = bytes | _Headers | _End


@dataclass
class _Side:
    """One HTTP/2 connection of the bridge and what waits for its flow-control window."""

    conn: H2Connection
    writer: asyncio.StreamWriter
    outbox: dict[int, deque[Item]] = field(default_factory=dict)
    # Streams whose last header block already carried END_STREAM: h2 reports StreamEnded
    # for them too, and ending them twice is a protocol error.
    ended_by_headers: set[int] = field(default_factory=set)

    def queue(self, stream_id: int, item: Item) -> None:
        self.outbox.setdefault(stream_id, deque()).append(item)

    def flush(self) -> None:
        """Send what the peer's windows allow; the rest waits for a WINDOW_UPDATE."""
        for stream_id in list(self.outbox):
            queue = self.outbox[stream_id]
            try:
                self._flush_stream(stream_id, queue)
            except ProtocolError:
                queue.clear()  # the stream was reset or closed meanwhile: nothing to deliver
            if not queue:
                del self.outbox[stream_id]
        self.writer.write(self.conn.data_to_send())

    def _flush_stream(self, stream_id: int, queue: deque[Item]) -> None:
        while queue:
            item = queue[0]
            if isinstance(item, bytes):
                window = self.conn.local_flow_control_window(stream_id)
                room = min(window, self.conn.max_outbound_frame_size)
                if room <= 0:
                    return
                self.conn.send_data(stream_id, item[:room])
                if room < len(item):
                    queue[0] = item[room:]
                    continue
            elif isinstance(item, _Headers):
                self.conn.send_headers(stream_id, item.headers, end_stream=item.end)
            else:
                self.conn.end_stream(stream_id)
            queue.popleft()


class ApiKeyGate:
    """A TlsProxy bridge that lets through only calls carrying `Bearer <api_key>`."""

    def __init__(self, api_key: str) -> None:
        self._expected = f"Bearer {api_key}"
        self.calls: list[Call] = []

    def refusal(self, authorization: str | None) -> str | None:
        """Why a call with this `authorization` is refused, or None to let it through."""
        if authorization is None:
            return "no API key (authorization metadata missing)"
        if not hmac.compare_digest(authorization.encode(), self._expected.encode()):
            return "invalid API key"
        return None

    async def __call__(
        self,
        down_reader: asyncio.StreamReader,
        down_writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        await _Bridge(self, down_writer, up_writer).run(down_reader, up_reader)


class _Bridge:
    """One client connection: client streams re-sent upstream, answers sent back."""

    def __init__(
        self, gate: ApiKeyGate, down_writer: asyncio.StreamWriter, up_writer: asyncio.StreamWriter
    ) -> None:
        self.gate = gate
        server_side = H2Configuration(client_side=False, header_encoding="utf-8")
        client_side = H2Configuration(client_side=True, header_encoding="utf-8")
        self.down = _Side(H2Connection(config=server_side), down_writer)
        self.up = _Side(H2Connection(config=client_side), up_writer)
        self.to_up: dict[int, int] = {}
        self.to_down: dict[int, int] = {}
        self.refused: set[int] = set()
        self.closed = False

    async def run(self, down_reader: asyncio.StreamReader, up_reader: asyncio.StreamReader) -> None:
        self.down.conn.initiate_connection()
        self.up.conn.initiate_connection()
        await self._send()
        readers = {
            asyncio.ensure_future(self._read(down_reader, self._from_client)),
            asyncio.ensure_future(self._read(up_reader, self._from_server)),
        }
        try:
            await asyncio.wait(readers, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    async def _read(self, reader: asyncio.StreamReader, handle: Callable[[bytes], None]) -> None:
        while not self.closed and (data := await reader.read(_CHUNK)):
            handle(data)
            await self._send()

    async def _send(self) -> None:
        for side in (self.down, self.up):
            side.flush()
        await self.down.writer.drain()
        await self.up.writer.drain()

    def _from_client(self, data: bytes) -> None:
        for event in self.down.conn.receive_data(data):
            if isinstance(event, RequestReceived):
                self._request(event)
            elif isinstance(event, DataReceived):
                self.down.conn.acknowledge_received_data(
                    event.flow_controlled_length, event.stream_id
                )
                if event.stream_id not in self.refused:
                    self.up.queue(self.to_up[event.stream_id], event.data)
            else:
                self._common(event, self.up, self.to_up)

    def _from_server(self, data: bytes) -> None:
        for event in self.up.conn.receive_data(data):
            if isinstance(event, ResponseReceived | TrailersReceived):
                down_id = self.to_down[event.stream_id]
                end = event.stream_ended is not None
                if end:
                    self.down.ended_by_headers.add(down_id)
                self.down.queue(down_id, _Headers(list(event.headers), end))
            elif isinstance(event, DataReceived):
                self.up.conn.acknowledge_received_data(
                    event.flow_controlled_length, event.stream_id
                )
                self.down.queue(self.to_down[event.stream_id], event.data)
            else:
                self._common(event, self.down, self.to_down)

    def _request(self, event: RequestReceived) -> None:
        headers = list(event.headers)
        names = dict(headers)
        authorization = names.get("authorization")
        reason = self.gate.refusal(authorization)
        self.gate.calls.append(Call(names.get(":path", ""), authorization, reason is not None))
        if reason is not None:
            self.refused.add(event.stream_id)
            answer = [
                (":status", "200"),
                ("content-type", "application/grpc"),
                ("grpc-status", UNAUTHENTICATED),
                ("grpc-message", reason),
            ]
            self.down.conn.send_headers(event.stream_id, answer, end_stream=True)
            return
        up_id = self.up.conn.get_next_available_stream_id()
        self.to_up[event.stream_id], self.to_down[up_id] = up_id, event.stream_id
        end = event.stream_ended is not None
        if end:
            self.up.ended_by_headers.add(up_id)
        # At once, not queued: the next stream id is only taken once its headers are sent.
        self.up.conn.send_headers(up_id, headers, end_stream=end)

    def _common(self, event: Event, target: _Side, ids: dict[int, int]) -> None:
        """Stream ends, resets and the connection's end, in either direction."""
        if isinstance(event, ConnectionTerminated):
            self.closed = True
            return
        stream_id = getattr(event, "stream_id", None)
        if stream_id is None or stream_id in self.refused or stream_id not in ids:
            return
        other = ids[stream_id]
        if isinstance(event, StreamEnded) and other not in target.ended_by_headers:
            target.queue(other, _End())
        elif isinstance(event, StreamReset):
            target.outbox.pop(other, None)
            with contextlib.suppress(ProtocolError):  # already closed on that side
                target.conn.reset_stream(other, error_code=event.error_code or 0)
