"""Service fallback over OPC UA: write a control point (a substation RTU's ControlMode).

Apply reads the node's value and DataType in one request, refuses a node whose type is
not the configured one (writing an Int32 mode into a Boolean breaker point must never
happen silently), writes only when the value differs, and verify reads it back. A Bad
status from the server is permanent unless it says "not now" (timeouts, lost sessions,
busy server). Passwords come from a SecretRef at connect time and never reach a message.

By default every call connects and disconnects (asyncua runs background tasks per client,
so a kept client must be closed by its owner). `keep_connections=True` keeps one session
per endpoint and user, reopened after any transport failure; then `await aclose()`. Plan,
receipts and that connection keeping are shared with the other mode switches
(`adapters.service.modes`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from asyncua import ua
from asyncua.client.client import Client
from asyncua.client.ua_client import UaClientState
from asyncua.common.node import Node
from asyncua.ua import status_codes
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from adapters.base import AdapterError, PermanentAdapterError, TransientAdapterError
from adapters.secrets import SecretRef
from adapters.service.modes import ModeSwitchAdapter, ModeTable
from contracts.adapter import LAB_ENDPOINT

ModeValue = int | float | str | bool

# Status codes that say "not now": the same request may succeed later.
_TRANSIENT_STATUS = frozenset(
    getattr(status_codes.StatusCodes, f"Bad{name}")
    for name in """
    Timeout RequestTimeout RequestInterrupted CommunicationError NoCommunication
    ConnectionClosed NotConnected ServerNotConnected ServerHalted Shutdown
    SessionClosed SessionIdInvalid SessionNotActivated SecureChannelClosed
    SecureChannelIdInvalid TooManySessions TooManyOperations MaxConnectionsReached
    ServerTooBusy TcpServerTooBusy ResourceUnavailable OutOfMemory
    WaitingForInitialData DeviceFailure
    """.split()  # noqa: SIM905 - a word list reads better than 24 quoted lines
)
_INTEGER_RANGES = {
    **{f"Int{bits}": (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) for bits in (16, 32, 64)},
    **{f"UInt{bits}": (0, 2**bits - 1) for bits in (16, 32, 64)},
    "SByte": (-128, 127),
    "Byte": (0, 255),
}
SUPPORTED_TYPES = frozenset({*_INTEGER_RANGES, "Boolean", "Float", "Double", "String"})
# A kept client reads the server state this often, noticing a silently dead peer.
_WATCHDOG_S = 5.0
_SESSION_TIMEOUT_MS = 60_000


def _fits(variant_type: str, value: object) -> bool:
    if variant_type == "Boolean":
        return isinstance(value, bool)
    if variant_type == "String":
        return isinstance(value, str)
    if isinstance(value, bool):
        return False  # bool is an int subclass, but True is not a register value
    if variant_type in {"Float", "Double"}:
        return isinstance(value, int | float) and math.isfinite(value)
    low, high = _INTEGER_RANGES[variant_type]
    return isinstance(value, int) and low <= value <= high


@dataclass(frozen=True)
class OpcUaNode(ModeTable[ModeValue]):
    """A writable control point and the modes it takes."""

    asset: str
    endpoint: str  # opc.tcp://host:port/path
    node_id: str  # ns=2;s=North.ControlMode, or nsu=<namespace uri>;s=...
    modes: Mapping[str, ModeValue]
    variant_type: str = "Int32"  # a scalar ua.VariantType name
    username: str | None = None
    password: SecretRef | None = None
    safe_mode: str | None = None

    def __post_init__(self) -> None:
        where = f"{self.asset} ({self.node_id})"
        if self.variant_type not in SUPPORTED_TYPES:
            raise ValueError(
                f"{where}: variant_type {self.variant_type!r} is not one of "
                f"{sorted(SUPPORTED_TYPES)}"
            )
        for mode, value in self.modes.items():
            if not _fits(self.variant_type, value):
                raise ValueError(
                    f"{where}: mode {mode!r} value {value!r} is not a {self.variant_type}"
                )
        self.check_safe_mode(where)
        if (self.username is None) != (self.password is None):
            raise ValueError(f"{where}: username and password go together")
        try:
            ua.NodeId.from_string(self.node_id)
        except (ValueError, UaError) as exc:
            raise ValueError(f"{where}: node_id is not an OPC UA node id: {exc}") from exc

    @classmethod
    def from_config(
        cls,
        asset: str,
        record: Mapping[str, Any],
        *,
        modes: Mapping[str, ModeValue],
        safe_mode: str | None = None,
        lab_endpoint: str | None = None,
        secrets_base: Path | None = None,
    ) -> OpcUaNode:
        """An inventory asset's `opcua` record: `endpoint` ("lab" or opc.tcp://...),
        `node_id`, optional `variant_type`, `username`, `password_env`/`password_file`."""
        endpoint = str(record.get("endpoint", LAB_ENDPOINT))
        if endpoint == LAB_ENDPOINT:
            if lab_endpoint is None:
                raise ValueError(f"{asset}: endpoint is the lab but no lab endpoint was given")
            endpoint = lab_endpoint
        if "node_id" not in record:
            raise ValueError(f"{asset}: opcua.node_id is missing")
        username = record.get("username")
        password = (
            SecretRef.from_config(dict(record), "password", base=secrets_base) if username else None
        )
        return cls(
            asset=asset,
            endpoint=endpoint,
            node_id=str(record["node_id"]),
            modes=dict(modes),
            variant_type=str(record.get("variant_type", "Int32")),
            username=str(username) if username else None,
            password=password,
            safe_mode=safe_mode,
        )

    @property
    def ua_type(self) -> ua.VariantType:
        return ua.VariantType[self.variant_type]


def _error(node: OpcUaNode, what: str, exc: BaseException) -> AdapterError:
    """Sort a failure: transport trouble and "not now" statuses are worth a retry."""
    where = f"{what} {node.node_id} on {node.asset} at {node.endpoint}"
    if isinstance(exc, UaStatusCodeError):
        name, _doc = status_codes.get_name_and_doc(exc.code)
        if exc.code in _TRANSIENT_STATUS:
            return TransientAdapterError(f"{where} failed: {name}")
        return PermanentAdapterError(f"{where} refused: {name}")
    if isinstance(exc, TimeoutError):
        return TransientAdapterError(f"{where} timed out")
    return TransientAdapterError(f"{where} failed: {exc.__class__.__name__}: {exc}")


def _builtin_type(data_type: object) -> ua.VariantType | None:
    """The VariantType a DataType node id stands for, when it is a concrete built-in."""
    if not isinstance(data_type, ua.NodeId) or data_type.NamespaceIndex != 0:
        return None
    identifier = data_type.Identifier
    if not isinstance(identifier, int) or not 1 <= identifier <= 23:
        return None  # BaseDataType, Number, Enumeration... say nothing concrete
    return ua.VariantType(identifier)


class _Session:
    """A connected client plus the node handles resolved on it."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._nodes: dict[str, Node] = {}

    @property
    def alive(self) -> bool:
        return self.client.state is UaClientState.CONNECTED

    async def node(self, node_id: str) -> Node:
        node = self._nodes.get(node_id)
        if node is None:
            parsed = ua.NodeId.from_string(node_id)
            uri = getattr(parsed, "NamespaceUri", None)
            if uri:
                # Namespace indexes are per server; a URI survives a server's rebuild.
                index = await self.client.get_namespace_index(uri)
                parsed = ua.NodeId(parsed.Identifier, cast("Any", index), parsed.NodeIdType)
            node = self._nodes[node_id] = self.client.get_node(parsed)
        return node

    async def close(self, timeout_s: float) -> None:
        """Close the session politely when the peer is there; always free the socket."""
        try:
            if self.alive:
                with suppress(Exception):
                    await asyncio.wait_for(self.client.disconnect(), timeout_s)
            else:
                with suppress(Exception):
                    await self.client.close_session()
        finally:
            self.client.disconnect_socket()


class OpcUaFallbackAdapter(ModeSwitchAdapter[OpcUaNode, _Session, ModeValue]):
    """Adapter `opcua`: action `set` with `args.mode` on target `{"asset": ...}`."""

    name = "opcua"
    kind = "OPC UA node"
    noun = "node(s)"
    reads_back = "node reads back"
    mismatch = "node holds {current!r}, expected {expected!r}"

    def __init__(
        self,
        nodes: Mapping[str, OpcUaNode],
        *,
        timeout_s: float = 2.0,
        keep_connections: bool = False,
    ) -> None:
        super().__init__(nodes, keep_connections=keep_connections)
        self._timeout_s = timeout_s

    # --- connections: one session per endpoint and user ------------------------------

    def _endpoint(self, point: OpcUaNode) -> tuple[str, str | None]:
        return (point.endpoint, point.username)

    async def _connect(self, point: OpcUaNode) -> _Session:
        client = Client(point.endpoint, timeout=self._timeout_s, watchdog_intervall=_WATCHDOG_S)
        client.name = client.description = "Bulkhead containment"
        client.application_uri = "urn:bulkhead:adapter:opcua"
        # A minute, not asyncua's hour: a session we could not close is freed soon, and a
        # kept one stays alive through the watchdog's reads.
        client.session_timeout = _SESSION_TIMEOUT_MS
        if point.username is not None and point.password is not None:
            client.set_user(point.username)
            client.set_password(point.password.read())  # read now: a rotated file counts
        try:
            await client.connect()
        except UaStatusCodeError as exc:
            client.disconnect_socket()
            name, _doc = status_codes.get_name_and_doc(exc.code)
            if exc.code in _TRANSIENT_STATUS:
                raise TransientAdapterError(
                    f"connecting to {point.endpoint} failed: {name}"
                ) from exc
            who = f"user {point.username} ({point.password!r})" if point.username else "anonymous"
            raise PermanentAdapterError(
                f"{point.endpoint} refused the session for {who}: {name}"
            ) from exc
        except (OSError, TimeoutError, UaError) as exc:
            client.disconnect_socket()
            raise TransientAdapterError(
                f"cannot connect to {point.asset} at {point.endpoint}: "
                f"{exc.__class__.__name__} {exc}".rstrip()
            ) from exc
        return _Session(client)

    async def _disconnect(self, connection: _Session) -> None:
        await connection.close(self._timeout_s)

    def _alive(self, connection: _Session) -> bool:
        return connection.alive

    # --- one request each ------------------------------------------------------------

    async def _read(self, connection: _Session, point: OpcUaNode, *, verifying: bool) -> ModeValue:
        """The current value; before a write, its DataType too, in the same request."""
        check_type = not verifying
        attributes = (
            [AttributeIds.Value, AttributeIds.DataType] if check_type else [AttributeIds.Value]
        )
        try:
            handle = await connection.node(point.node_id)
            results = await handle.read_attributes(attributes)
            for result in results:
                if result.StatusCode is not None:
                    result.StatusCode.check()
        except (UaError, OSError, TimeoutError) as exc:
            raise _error(point, "reading", exc) from exc
        variant = results[0].Value
        if check_type:
            self._check_type(point, variant, results[1].Value)
        value = variant.Value if variant is not None else None
        if not isinstance(value, int | float | str):  # bool is an int
            raise PermanentAdapterError(
                f"{point.asset}: {point.node_id} holds {value!r}, not a scalar mode value"
            )
        return value

    @staticmethod
    def _check_type(node: OpcUaNode, variant: ua.Variant | None, data_type: object) -> None:
        declared = _builtin_type(data_type.Value if isinstance(data_type, ua.Variant) else None)
        actual = declared or (variant.VariantType if variant is not None else None)
        if actual is not node.ua_type:
            shown = actual.name if actual is not None else "no value"
            raise PermanentAdapterError(
                f"{node.asset}: {node.node_id} is {shown}, configured as {node.variant_type}; "
                "refusing to write a mismatched type"
            )

    async def _write(
        self, connection: _Session, point: OpcUaNode, value: ModeValue, *, restoring: bool
    ) -> None:
        try:
            handle = await connection.node(point.node_id)
            await handle.write_attribute(
                AttributeIds.Value, ua.DataValue(ua.Variant(value, point.ua_type))
            )
        except (UaError, OSError, TimeoutError) as exc:
            raise _error(point, "writing", exc) from exc

    def _change(self, point: OpcUaNode, mode: str, value: ModeValue, current: ModeValue) -> str:
        return (
            f"write {value!r} ({mode}) as {point.variant_type} to {point.node_id} at "
            f"{point.endpoint}, was {current!r} ({point.mode_of(current)})"
        )

    def _previous(self, point: OpcUaNode, value: Any) -> ModeValue:
        if not _fits(point.variant_type, value):
            raise PermanentAdapterError(
                f"{point.asset}: recorded previous value {value!r} is not a {point.variant_type}"
            )
        return cast("ModeValue", value)
