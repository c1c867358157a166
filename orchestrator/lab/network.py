"""The lab's city network: a gateway namespace routing between one namespace per zone, with
the inventory's addresses (198.18.0.0/15 only) and a TCP service on every lab host.

`<prefix>gw` is the enforcement point the inventory calls "lab"; zone `traffic` lives in
`<prefix>traffic`, holding every traffic asset's address on one veth to the gateway. Each
host answers TCP on LAB_TCP_PORT with its name, so a demo or a test proves reachability
with a real connection.

Needs root (namespaces, veth). Sockets are made inside a namespace by a short-lived thread
that joins it with setns(2): a socket stays in the namespace it was created in, so the
event loop can use it and no helper process is needed per host.
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import functools
import os
import shutil
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_network
from pathlib import Path
from typing import IO, TypeVar

from orchestrator.config import Settings
from orchestrator.wiring.inventory import Inventory

# RFC 2544 benchmarking range: never routed on the internet, safe to create on any host.
LAB_RANGE = IPv4Network("198.18.0.0/15")
LAB_TCP_PORT = 8000
NETNS_DIR = Path("/run/netns")
_CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def unavailable() -> str | None:
    """Why the network lab cannot run here (None when it can)."""
    if not sys.platform.startswith("linux"):
        return "the network lab needs Linux network namespaces"
    if os.geteuid() != 0:
        return "the network lab needs root (network namespaces, veth)"
    if shutil.which("ip") is None:
        return "the network lab needs `ip` (Debian: apt-get install iproute2)"
    return None


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def in_netns(netns: str, make: Callable[[], T]) -> T:
    """Run `make` in a throwaway thread that joined the namespace, and return its result."""
    libc = _libc()
    outcome: list[T] = []
    failure: list[BaseException] = []

    def join() -> None:
        with (NETNS_DIR / netns).open("rb") as handle:
            if libc.setns(handle.fileno(), _CLONE_NEWNET) != 0:
                errno = ctypes.get_errno()
                raise OSError(errno, f"setns({netns}): {os.strerror(errno)}")

    def run() -> None:
        try:
            join()
            outcome.append(make())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            failure.append(exc)

    # A fresh thread, never a pooled one: the thread's namespace stays changed until it ends.
    thread = threading.Thread(target=run, name=f"netns-{netns}", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


@dataclass(frozen=True)
class LabHost:
    ip: IPv4Address
    name: str


@dataclass(frozen=True)
class LabZone:
    name: str
    cidrs: tuple[IPv4Network, ...]
    hosts: tuple[LabHost, ...]

    @property
    def gateways(self) -> tuple[IPv4Address, ...]:
        """The gateway's address in each of the zone's CIDRs: the first usable one."""
        return tuple(next(c.hosts()) for c in self.cidrs)


def lab_zones(inventory: Inventory) -> list[LabZone]:
    """Every inventory zone with its assets, plus conduit hosts that lie in a zone."""
    by_ip = {IPv4Address(a["ip"]): uid for uid, a in inventory.assets.items() if a.get("ip")}
    conduits = inventory.data.get("network", {}).get("conduits", {})
    for cid, conduit in conduits.items():
        for cidr in conduit.get("cidrs", []):
            net = ip_network(cidr)
            if net.version == 4 and net.num_addresses == 1:
                by_ip.setdefault(IPv4Address(net.network_address), f"conduit:{cid}")
    zones = []
    for name, zone in inventory.data.get("zones", {}).items():
        cidrs = tuple(IPv4Network(c) for c in zone.get("cidrs", []) if ":" not in c)
        hosts = tuple(
            LabHost(ip, uid) for ip, uid in sorted(by_ip.items()) if any(ip in c for c in cidrs)
        )
        if cidrs:
            zones.append(LabZone(name, cidrs, hosts))
    return zones


class CityNetwork:
    def __init__(
        self, zones: Sequence[LabZone], *, prefix: str = "bh-", port: int = LAB_TCP_PORT
    ) -> None:
        for zone in zones:
            for cidr in zone.cidrs:
                if not cidr.subnet_of(LAB_RANGE):
                    raise ValueError(f"zone {zone.name}: {cidr} is outside {LAB_RANGE}")
            if set(zone.gateways) & {h.ip for h in zone.hosts}:
                raise ValueError(f"zone {zone.name}: a host uses the gateway address")
        self.zones = list(zones)
        self.prefix = prefix
        self.port = port
        self._servers: list[asyncio.Server] = []
        self._lock: IO[str] | None = None

    @classmethod
    def from_inventory(
        cls, inventory: Inventory, *, prefix: str = "bh-", port: int = LAB_TCP_PORT
    ) -> CityNetwork:
        return cls(lab_zones(inventory), prefix=prefix, port=port)

    @property
    def gateway(self) -> str:
        return f"{self.prefix}gw"

    def netns_of(self, zone: str) -> str:
        return f"{self.prefix}{zone}"

    @property
    def namespaces(self) -> list[str]:
        return [self.gateway, *(self.netns_of(z.name) for z in self.zones)]

    def zone_of(self, ip: str) -> LabZone:
        address = IPv4Address(ip)
        for zone in self.zones:
            if any(h.ip == address for h in zone.hosts):
                return zone
        raise KeyError(f"{ip} is not a lab host")

    def hosts(self) -> list[tuple[LabZone, LabHost]]:
        return [(zone, host) for zone in self.zones for host in zone.hosts]

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def lock_path(self) -> Path:
        return Path(f"/run/bulkhead-lab-{self.prefix}lock")

    def _take_lock(self) -> None:
        """Starting removes leftovers of the same prefix: never those of a live lab."""
        handle = self.lock_path.open("w")  # held open (and locked) while the lab runs
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise RuntimeError(
                f"another process runs the network lab with prefix {self.prefix!r}"
            ) from None
        self._lock = handle

    async def start(self) -> None:
        self._take_lock()
        try:
            await self._remove_namespaces()  # a crashed run's namespaces, if any
            await self._build()
            for _zone, host in self.hosts():
                reply = f"{host.name} {host.ip}\n".encode()
                self._servers.append(await self.serve(str(host.ip), self.port, reply))
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        if self._lock is None:
            return  # never started (or another lab holds the prefix): nothing of ours
        try:
            await self._remove_namespaces()
            self.lock_path.unlink(missing_ok=True)
        finally:
            self._lock.close()
            self._lock = None

    async def __aenter__(self) -> CityNetwork:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _remove_namespaces(self) -> None:
        present = [ns for ns in self.namespaces if (NETNS_DIR / ns).exists()]
        if present:
            # Deleting a namespace deletes its veth ends and the firewall state in it.
            await _ip(*(f"netns del {ns}" for ns in present), check=False)

    async def _build(self) -> None:
        gw = self.gateway
        links = [f"netns add {ns}" for ns in self.namespaces]
        links += [
            f"link add z{i} netns {gw} type veth peer name eth0 netns {self.netns_of(z.name)}"
            for i, z in enumerate(self.zones)
        ]
        await _ip(*links)
        gateway_cmds = ["link set lo up"]
        for i, zone in enumerate(self.zones):
            gateway_cmds += [
                f"addr add {addr}/{cidr.prefixlen} dev z{i}"
                for addr, cidr in zip(zone.gateways, zone.cidrs, strict=True)
            ]
            gateway_cmds.append(f"link set z{i} up")
        await _ip(*gateway_cmds, netns=gw)
        for zone in self.zones:
            prefixlen = {
                h.ip: next(c.prefixlen for c in zone.cidrs if h.ip in c) for h in zone.hosts
            }
            commands = ["link set lo up"]
            commands += [f"addr add {h.ip}/{prefixlen[h.ip]} dev eth0" for h in zone.hosts]
            commands += ["link set eth0 up", f"route add default via {zone.gateways[0]}"]
            await _ip(*commands, netns=self.netns_of(zone.name))
        in_netns(gw, _enable_forwarding)

    # --- traffic ----------------------------------------------------------------------------

    async def serve(self, ip: str, port: int, reply: bytes) -> asyncio.Server:
        """A TCP service on a lab host that sends `reply` to every connection."""
        netns = self.netns_of(self.zone_of(ip).name)
        sock = in_netns(netns, lambda: _listening_socket(ip, port))

        async def answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                writer.write(reply)
                await writer.drain()
            except OSError:
                pass  # the prober gave up first; nothing to tell it
            finally:
                writer.close()

        return await asyncio.start_server(answer, sock=sock)

    async def connect(
        self, src: str, dst: str, port: int | None = None, timeout_s: float = 1.0
    ) -> str | None:
        """What `dst` answers to a TCP connection from lab host `src` (None: no answer).

        The source address is bound explicitly: a zone namespace holds several hosts and
        the firewall matches on the address, not the namespace.
        """
        netns = self.netns_of(self.zone_of(src).name)
        sock = in_netns(netns, lambda: _client_socket(src))
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout_s):
                await loop.sock_connect(sock, (dst, port or self.port))
                data = await loop.sock_recv(sock, 256)
        except (TimeoutError, OSError):
            return None
        finally:
            sock.close()
        return data.decode(errors="replace").strip() or None


def _listening_socket(ip: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((ip, port))
    sock.listen(64)
    sock.setblocking(False)  # noqa: FBT003 - socket API
    return sock


def _client_socket(ip: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((ip, 0))
    sock.setblocking(False)  # noqa: FBT003 - socket API
    return sock


def _enable_forwarding() -> None:
    # /proc/sys/net is per namespace, resolved for the thread that opens it.
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")


async def _ip(*commands: str, netns: str | None = None, check: bool = True) -> None:
    """Many `ip` commands in one process (`ip -batch -`): building the lab stays fast."""
    # -force: a cleanup goes on past a command that fails (a namespace already gone).
    argv = ["ip", *(["-n", netns] if netns else []), *([] if check else ["-force"]), "-batch", "-"]
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate("\n".join(commands).encode() + b"\n")
    if check and process.returncode != 0:
        raise RuntimeError(f"ip {' '.join(argv[1:])} failed: {err.decode().strip()}")


async def start_city_lab(settings: Settings) -> tuple[CityNetwork | None, str]:
    """The network lab for `bulkhead up` / `lab up`, or why it is off (plan-only mode)."""
    plan_only = "network steps run in plan-only mode"
    reason = unavailable()
    if reason is not None:
        return None, f"off: {reason}; {plan_only}"
    network = CityNetwork.from_inventory(
        Inventory.load(settings.policy_dir), prefix=settings.lab_netns_prefix
    )
    try:
        await network.start()
    except (RuntimeError, OSError, ValueError) as exc:
        return None, f"off: {exc}; {plan_only}"
    zones = ", ".join(
        f"{z.name} ({len(z.hosts)} host{'' if len(z.hosts) == 1 else 's'})" for z in network.zones
    )
    line = f"gateway netns {network.gateway}; {zones}; every host answers TCP {network.port}"
    if shutil.which("nft") is None:
        line += f"; nft is not installed, so {plan_only}"
    return network, line
