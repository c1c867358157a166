"""Lab substation RTUs: a real OPC UA server (asyncua) on loopback.

One object per substation under Objects (`North` is asset rtu-e01), each with:
- `ControlMode` Int32, writable: 0 remote, 1 local_manual (inventory substation_rtu);
- `BreakerClosed` Boolean, writable: a second, differently typed point;
- `Frequency` Double and `Health` String, read-only telemetry.
Node ids are strings in the lab namespace (`ns=2;s=North.ControlMode`; the namespace
URI is NAMESPACE, so `nsu=urn:bulkhead:lab:substation;s=North.ControlMode` works too).

Every client write is counted per node id, so tests can prove exactly-once writes.
Starting costs 1-2 s once (asyncua builds its standard address space in a thread); stop()
only closes the listener, so a later start() is immediate and keeps the values, like a
controller that drops off the network and comes back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from asyncua import ua
from asyncua.common.callback import CallbackService, CallbackType, ServerItemCallback
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.server import Server
from asyncua.server.user_managers import UserManager
from asyncua.ua.attribute_ids import AttributeIds

from orchestrator.wiring.adapters import opcua_url

NAMESPACE = "urn:bulkhead:lab:substation"
MODE_REMOTE = 0
MODE_LOCAL_MANUAL = 1
SUBSTATIONS = ("North", "South")


def node_id(substation: str, point: str = "ControlMode") -> str:
    return f"ns=2;s={substation}.{point}"


class _Users(UserManager):
    """One username/password; anonymous and everything else is refused."""

    def __init__(self, credentials: tuple[str, str]) -> None:
        self._credentials = credentials

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        del iserver, certificate
        if (username, password) == self._credentials:
            return User(role=UserRole.User)
        return None


@dataclass
class SubstationLab:
    """Simulated substation RTUs behind one OPC UA endpoint."""

    host: str = "127.0.0.1"
    port: int = 14840
    substations: tuple[str, ...] = SUBSTATIONS
    # (username, password): when set, clients must log in with exactly these.
    credentials: tuple[str, str] | None = None
    writes: Counter[str] = field(default_factory=Counter)
    _server: Server | None = None
    _running: bool = False

    @property
    def endpoint(self) -> str:
        return opcua_url(self.host, self.port)

    async def _build(self) -> Server:
        users = _Users(self.credentials) if self.credentials else None
        server = Server(user_manager=users)
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("Bulkhead lab substations")
        # Plaintext only: no certificates to generate, and it is loopback.
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        if self.credentials:
            server.set_identity_tokens([ua.UserNameIdentityToken])
        index = await server.register_namespace(NAMESPACE)
        for name in self.substations:
            await self._add_substation(server, index, name)
        server.subscribe_server_callback(CallbackType.PostWrite, self._count_writes)
        return server

    @staticmethod
    async def _add_substation(server: Server, index: int, name: str) -> None:
        station = await server.nodes.objects.add_object(f"ns={index};s={name}", f"{index}:{name}")
        points: Mapping[str, tuple[Any, ua.VariantType, bool]] = {
            "ControlMode": (MODE_REMOTE, ua.VariantType.Int32, True),
            "BreakerClosed": (True, ua.VariantType.Boolean, True),
            "Frequency": (50.0, ua.VariantType.Double, False),
            "Health": ("ok", ua.VariantType.String, False),
        }
        for point, (value, variant_type, writable) in points.items():
            variable = await station.add_variable(
                f"ns={index};s={name}.{point}", f"{index}:{point}", value, variant_type
            )
            if writable:
                await variable.set_writable()

    def _count_writes(self, event: ServerItemCallback, dispatcher: CallbackService) -> None:
        del dispatcher
        if not event.is_external:
            return  # the lab's own set_value, not a client
        for item, status in zip(
            event.request_params.NodesToWrite, event.response_params, strict=False
        ):
            if status.is_good() and item.AttributeId == AttributeIds.Value:
                self.writes[item.NodeId.to_string()] += 1

    async def start(self) -> None:
        if self._running:
            return
        if self._server is None:
            self._server = await self._build()
        await self._server.start()
        self._running = True

    async def stop(self) -> None:
        if self._server is not None and self._running:
            await self._server.stop()
        self._running = False

    def write_count(self, substation: str, point: str = "ControlMode") -> int:
        return self.writes[node_id(substation, point)]

    async def read(self, substation: str, point: str = "ControlMode") -> Any:
        """The value as the server holds it (no client, works while stopped)."""
        if self._server is None:
            raise RuntimeError("the substation lab was never started")
        return await self._server.get_node(node_id(substation, point)).read_value()

    async def set(self, substation: str, point: str, value: Any) -> None:
        """Change a point from inside the RTU (a local operator, a fault): not counted."""
        if self._server is None:
            raise RuntimeError("the substation lab was never started")
        node = self._server.get_node(node_id(substation, point))
        variant_type = await node.read_data_type_as_variant_type()
        await node.write_value(ua.Variant(value, variant_type))
