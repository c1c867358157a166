"""Health probes of essential services, run before and after a containment step.

A probe answers "is this service still doing its job?" from outside, the way a user of
it would: a TCP port accepts, an HTTP endpoint answers the expected status (and JSON
value), a Modbus register holds a value in range. A probe never raises because the
target is down, slow or talking nonsense: that is the answer (unhealthy, with a detail).

Inventory records (`parse_probe`):
    {"kind": "tcp", "host": "198.18.50.10", "port": 443}
    {"kind": "http", "url": "https://cad.example/health", "expect_status": 200,
     "json": {"path": "status", "equals": "ok"}}
    {"kind": "modbus", "host": "...", "port": 502, "unit": 1, "register": 0,
     "min": 0, "max": 2}
each with an optional "timeout_s" (default 1 s). The lab is named, not hard-wired:
host "lab" is the lab host, a port may be a lab port name ("http", "opcua", "modbus"),
and a URL "lab:/path" or "lab:NAME/path" is http://<lab host>:<lab port NAME>/path.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from adapters.service.http import json_at, shown_url, ssl_context

DEFAULT_TIMEOUT_S = 1.0
LAB = "lab"
_LAB_URL = re.compile(r"^lab:(?P<name>[a-z][a-z0-9_-]*)?(?P<path>/.*)?$")
_KEYS = {
    "tcp": {"kind", "host", "port", "timeout_s"},
    "http": {"kind", "url", "expect_status", "json", "timeout_s"},
    "modbus": {"kind", "host", "port", "unit", "register", "min", "max", "timeout_s"},
}
# What a misbehaving target can make a probe raise; anything else is our bug and raises.
_TARGET_ERRORS = (
    OSError,
    httpx.HTTPError,
    ModbusException,
    json.JSONDecodeError,
    UnicodeDecodeError,
)


@dataclass(frozen=True)
class TcpProbe:
    """Healthy when a TCP connection to host:port is accepted."""

    host: str
    port: int
    timeout_s: float = DEFAULT_TIMEOUT_S
    # Tags each probe type so a serialized probe (a Temporal payload) decodes as itself.
    kind: Literal["tcp"] = "tcp"

    def describe(self) -> str:
        return f"tcp {self.host}:{self.port}"


@dataclass(frozen=True)
class HttpProbe:
    """Healthy when GET url answers expect_status and, if json_path is set, the JSON
    value there equals expect_value."""

    url: str
    expect_status: int = 200
    json_path: str | None = None
    expect_value: Any = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    kind: Literal["http"] = "http"

    def describe(self) -> str:
        return f"http GET {shown_url(self.url)}"


@dataclass(frozen=True)
class ModbusProbe:
    """Healthy when a holding register of a unit reads within [min, max]."""

    host: str
    port: int
    unit: int
    register: int
    min: int = 0
    max: int = 0xFFFF
    timeout_s: float = DEFAULT_TIMEOUT_S
    kind: Literal["modbus"] = "modbus"

    def describe(self) -> str:
        return f"modbus {self.host}:{self.port} unit {self.unit} register {self.register}"


Probe = TcpProbe | HttpProbe | ModbusProbe


@dataclass(frozen=True)
class ProbeResult:
    healthy: bool
    detail: str
    latency_ms: float
    probe: str = ""  # what was probed (Probe.describe()), for a responder to read


@dataclass(frozen=True)
class ServiceHealth:
    """A service is healthy when every one of its probes is (vacuously, with none)."""

    service: str
    healthy: bool
    results: tuple[ProbeResult, ...]

    @property
    def detail(self) -> str:
        if not self.results:
            return "no probes configured"
        failing = [f"{r.probe}: {r.detail}" for r in self.results if not r.healthy]
        return "; ".join(failing) if failing else "all probes healthy"


# --- running probes ----------------------------------------------------------------------


async def _tcp(probe: TcpProbe) -> tuple[bool, str]:
    _reader, writer = await asyncio.open_connection(probe.host, probe.port)
    writer.close()
    await writer.wait_closed()
    return True, "connection accepted"


async def _http(probe: HttpProbe, client: httpx.AsyncClient) -> tuple[bool, str]:
    # The library's own timeout is a looser backstop: probe() enforces timeout_s for all.
    response = await client.get(probe.url, timeout=probe.timeout_s * 2)
    if response.status_code != probe.expect_status:
        excerpt = re.sub(r"\s+", " ", response.text).strip()[:120]
        return False, f"status {response.status_code}, expected {probe.expect_status}: {excerpt}"
    if probe.json_path is None:
        return True, f"status {response.status_code}"
    try:
        value = json_at(response.json(), probe.json_path)
    except LookupError:
        return False, f"no {probe.json_path!r} in the response"
    if value != probe.expect_value:
        return False, f"{probe.json_path} is {value!r}, expected {probe.expect_value!r}"
    return True, f"status {response.status_code}, {probe.json_path} = {value!r}"


async def _modbus(probe: ModbusProbe) -> tuple[bool, str]:
    client = AsyncModbusTcpClient(
        probe.host, port=probe.port, timeout=probe.timeout_s * 2, retries=0, reconnect_delay=0
    )
    try:
        if not await client.connect():
            return False, "connection refused or timed out"
        response = await client.read_holding_registers(
            probe.register, count=1, device_id=probe.unit
        )
    finally:
        client.close()
    if response.isError():
        return False, f"device refused the read: {response}"
    value = int(response.registers[0])
    if not probe.min <= value <= probe.max:
        return False, f"register holds {value}, outside [{probe.min}, {probe.max}]"
    return True, f"register holds {value}"


async def probe(p: Probe, *, http: httpx.AsyncClient | None = None) -> ProbeResult:
    """Run one probe within its timeout; never raises for anything the target does."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(p.timeout_s):
            if isinstance(p, TcpProbe):
                healthy, detail = await _tcp(p)
            elif isinstance(p, ModbusProbe):
                healthy, detail = await _modbus(p)
            elif http is not None:
                healthy, detail = await _http(p, http)
            else:
                async with _http_client() as client:
                    healthy, detail = await _http(p, client)
    except (TimeoutError, httpx.TimeoutException):
        healthy, detail = False, f"no answer within {p.timeout_s:g} s"
    except _TARGET_ERRORS as exc:
        healthy, detail = False, f"{exc.__class__.__name__}: {exc}".rstrip(": ")
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    return ProbeResult(healthy, detail, latency_ms, p.describe())


def _http_client() -> httpx.AsyncClient:
    # No proxies from the environment and no redirects: probe exactly the configured URL.
    return httpx.AsyncClient(trust_env=False, follow_redirects=False, verify=ssl_context())


async def probe_all(probes: Mapping[str, Sequence[Probe]]) -> dict[str, ServiceHealth]:
    """Every probe of every service at once; the slowest probe bounds the wall time."""
    async with _http_client() as http:
        runs: list[Awaitable[ProbeResult]] = [
            probe(p, http=http) for checks in probes.values() for p in checks
        ]
        results = iter(await asyncio.gather(*runs))
    health = {}
    for service, checks in probes.items():
        mine = tuple(next(results) for _ in checks)
        health[service] = ServiceHealth(service, all(r.healthy for r in mine), mine)
    return health


# --- inventory records -------------------------------------------------------------------


def _int(config: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        # ValueError for every bad record, wrong type included: one except for a loader.
        raise ValueError(f"probe.{key}: expected an integer, got {value!r}")  # noqa: TRY004
    return value


def _timeout(config: Mapping[str, Any]) -> float:
    value = config.get("timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"probe.timeout_s: expected a positive number, got {value!r}")
    return float(value)


class _Lab:
    def __init__(self, host: str, ports: Mapping[str, int] | None) -> None:
        self.host = host
        self.ports = ports

    def port(self, name: str, key: str) -> int:
        if self.ports is None:
            raise ValueError(f"probe.{key}: {name!r} names a lab port, but no lab is configured")
        if name not in self.ports:
            raise ValueError(f"probe.{key}: no lab port {name!r} (known: {sorted(self.ports)})")
        return self.ports[name]

    def address(self, config: Mapping[str, Any]) -> tuple[str, int]:
        host = config.get("host")
        if not isinstance(host, str) or not host:
            raise ValueError(f"probe.host: expected a host name, got {host!r}")
        port = config.get("port")
        if isinstance(port, str):
            return (self.host if host == LAB else host), self.port(port, "port")
        if host == LAB:
            if self.ports is None:
                raise ValueError("probe.host: 'lab', but no lab is configured")
            host = self.host
        return host, _int(config, "port")

    def url(self, url: str) -> str:
        match = _LAB_URL.match(url)
        if match is None:
            raise ValueError(f"probe.url: {url!r} is not lab:/path or lab:NAME/path")
        port = self.port(match["name"] or "http", "url")
        return f"http://{self.host}:{port}{match['path'] or '/'}"


def parse_probe(
    config: Mapping[str, Any],
    *,
    lab_host: str = "127.0.0.1",
    lab_ports: Mapping[str, int] | None = None,
) -> Probe:
    """A probe from an inventory record; ValueError names the offending key. `lab_ports`
    (e.g. {"http": 15081, "opcua": 14840, "modbus": 15020}) resolves lab endpoints."""
    kind = config.get("kind")
    if kind not in _KEYS:
        raise ValueError(f"probe.kind: expected one of {sorted(_KEYS)}, got {kind!r}")
    unknown = sorted(set(config) - _KEYS[kind])
    if unknown:
        raise ValueError(f"probe.{unknown[0]}: not a key of a {kind} probe")
    lab = _Lab(lab_host, lab_ports)
    timeout_s = _timeout(config)
    if kind == "tcp":
        host, port = lab.address(config)
        return TcpProbe(host, port, timeout_s)
    if kind == "modbus":
        host, port = lab.address(config)
        low, high = _int(config, "min", 0), _int(config, "max", 0xFFFF)
        if low > high:
            raise ValueError(f"probe.min: {low} is above max {high}")
        unit, register = _int(config, "unit"), _int(config, "register")
        return ModbusProbe(host, port, unit, register, low, high, timeout_s)
    return _parse_http(config, lab, timeout_s)


def _parse_http(config: Mapping[str, Any], lab: _Lab, timeout_s: float) -> HttpProbe:
    url = config.get("url")
    if not isinstance(url, str) or not url:
        raise ValueError(f"probe.url: expected a URL, got {url!r}")
    if url.startswith(f"{LAB}:"):
        url = lab.url(url)
    elif not url.startswith(("http://", "https://")):
        raise ValueError(f"probe.url: {url!r} is not an http(s) URL")
    status = _int(config, "expect_status", 200)
    if not 100 <= status <= 599:
        raise ValueError(f"probe.expect_status: {status} is not an HTTP status")
    check = config.get("json")
    if check is None:
        return HttpProbe(url, status, timeout_s=timeout_s)
    if not isinstance(check, Mapping) or set(check) != {"path", "equals"}:
        raise ValueError('probe.json: expected {"path": ..., "equals": ...}')
    path = check["path"]
    if not isinstance(path, str):
        raise ValueError(f"probe.json.path: expected a dotted path, got {path!r}")  # noqa: TRY004
    return HttpProbe(url, status, path, check["equals"], timeout_s)
