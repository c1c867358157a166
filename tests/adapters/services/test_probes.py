"""Essential-service health probes against real services on loopback: healthy, unhealthy
and hung targets of each kind, the guard scenario, and parsing inventory records."""

from __future__ import annotations

import pytest
from conftest import free_port
from pymodbus.client import AsyncModbusTcpClient

from adapters.guard.probes import (
    HttpProbe,
    ModbusProbe,
    ServiceHealth,
    TcpProbe,
    parse_probe,
    probe,
    probe_all,
)
from adapters.secrets import SecretRef
from adapters.service.http import HttpCall, HttpFallbackAdapter, HttpSwitch, SecretHeader
from contracts.adapter import StepCommand
from orchestrator.lab.traffic import MODE_FLASH

FAST = 0.3  # seconds: a hung target costs each test this much, no more
LAB_PORTS = {"http": 15081, "opcua": 14840, "modbus": 15020}


def dispatch(url: str) -> HttpProbe:
    return HttpProbe(f"{url}/dispatch/health", 200, "status", "ok", timeout_s=FAST)


# --- tcp ---------------------------------------------------------------------------------


async def test_tcp_probe_is_healthy_when_the_port_accepts(city):
    result = await probe(TcpProbe("127.0.0.1", city.port))
    assert result.healthy
    assert result.detail == "connection accepted"
    assert result.probe == f"tcp 127.0.0.1:{city.port}"
    assert result.latency_ms >= 0


async def test_tcp_probe_is_unhealthy_when_nothing_listens():
    result = await probe(TcpProbe("127.0.0.1", free_port()))
    assert not result.healthy
    assert "ConnectionRefusedError" in result.detail


async def test_tcp_probe_gives_up_after_its_timeout(full_backlog_port):
    result = await probe(TcpProbe("127.0.0.1", full_backlog_port, timeout_s=FAST))
    assert not result.healthy
    assert result.detail == "no answer within 0.3 s"


# --- http --------------------------------------------------------------------------------


async def test_http_probe_is_healthy_on_the_expected_status_and_json_value(city):
    result = await probe(dispatch(city.url))
    assert result.healthy, result.detail
    assert result.detail == "status 200, status = 'ok'"


async def test_http_probe_is_unhealthy_on_another_status(city):
    city.dispatch_up = False
    result = await probe(dispatch(city.url))
    assert not result.healthy
    assert result.detail.startswith("status 503, expected 200:")
    assert "CAD offline" in result.detail


async def test_http_probe_is_unhealthy_when_the_json_value_differs(city):
    check = HttpProbe(f"{city.url}/tram/mode", json_path="mode", expect_value="degraded")
    result = await probe(check)
    assert not result.healthy
    assert result.detail == "mode is 'normal', expected 'degraded'"
    missing = await probe(HttpProbe(f"{city.url}/healthz", json_path="nope", expect_value=1))
    assert missing.detail == "no 'nope' in the response"


async def test_http_probe_is_unhealthy_when_the_body_is_not_json(city):
    result = await probe(HttpProbe(f"{city.url}/nowhere", 404, "status", "ok"))
    assert not result.healthy
    assert "JSONDecodeError" in result.detail


async def test_http_probe_gives_up_after_its_timeout(city):
    city.delay_s = 1.0
    result = await probe(dispatch(city.url))
    assert not result.healthy
    assert result.detail == "no answer within 0.3 s"


async def test_http_probe_is_unhealthy_when_nothing_listens():
    result = await probe(HttpProbe(f"http://127.0.0.1:{free_port()}/health"))
    assert not result.healthy
    assert "ConnectError" in result.detail


# --- modbus ------------------------------------------------------------------------------


async def test_modbus_probe_is_healthy_while_the_register_is_in_range(traffic_lab):
    check = ModbusProbe("127.0.0.1", traffic_lab.port, unit=1, register=0, min=0, max=2)
    result = await probe(check)
    assert result.healthy, result.detail
    assert result.detail == "register holds 0"


async def test_modbus_probe_is_unhealthy_when_the_register_leaves_its_range(traffic_lab):
    check = ModbusProbe("127.0.0.1", traffic_lab.port, unit=1, register=0, min=0, max=0)
    await _write_register(traffic_lab.port, MODE_FLASH)
    result = await probe(check)
    assert not result.healthy
    assert result.detail == "register holds 1, outside [0, 0]"


async def test_modbus_probe_is_unhealthy_when_the_controller_is_down():
    result = await probe(ModbusProbe("127.0.0.1", free_port(), 1, 0))
    assert not result.healthy
    assert result.detail == "connection refused or timed out"


async def test_modbus_probe_gives_up_after_its_timeout(silent_port):
    result = await probe(ModbusProbe("127.0.0.1", silent_port, 1, 0, timeout_s=FAST))
    assert not result.healthy
    assert result.detail == "no answer within 0.3 s"


async def _write_register(port: int, value: int) -> None:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, retries=0)
    await client.connect()
    try:
        await client.write_register(0, value, device_id=1)
    finally:
        client.close()


# --- many services at once, and the guard scenario ---------------------------------------


async def test_a_service_is_healthy_only_when_all_its_probes_are(city, traffic_lab):
    health = await probe_all(
        {
            "emergency-dispatch": [dispatch(city.url), TcpProbe("127.0.0.1", city.port)],
            "traffic-signals": [
                ModbusProbe("127.0.0.1", traffic_lab.port, 1, 0, 0, 2),
                TcpProbe("127.0.0.1", free_port()),
            ],
            "unwatched": [],
        }
    )
    assert health["emergency-dispatch"].healthy
    assert health["emergency-dispatch"].detail == "all probes healthy"
    signals = health["traffic-signals"]
    assert not signals.healthy
    assert [r.healthy for r in signals.results] == [True, False]
    assert signals.detail.startswith("tcp 127.0.0.1:")
    assert health["unwatched"] == ServiceHealth("unwatched", healthy=True, results=())


async def test_the_permits_maintenance_fallback_takes_dispatch_down_until_rolled_back(
    city, monkeypatch
):
    """The lab's deliberate coupling: what a guard must catch and undo."""
    monkeypatch.setenv("BH_TEST_PERMITS_TOKEN", city.token)
    permits = HttpFallbackAdapter(
        {
            "permits-web-01": HttpSwitch(
                asset="permits-web-01",
                modes={"normal": "normal", "maintenance_page": "maintenance_page"},
                read=HttpCall("GET", f"{city.url}/permits/mode", path="mode"),
                apply=HttpCall("PUT", f"{city.url}/permits/mode", body={"mode": "{mode}"}),
                headers={
                    "Authorization": SecretHeader(SecretRef(env="BH_TEST_PERMITS_TOKEN"), "Bearer ")
                },
            )
        }
    )
    guard = {"emergency-dispatch": [dispatch(city.url)]}
    assert (await probe_all(guard))["emergency-dispatch"].healthy

    step = StepCommand(
        incident_id="inc-1",
        step_id="fallback:permits",
        adapter="http",
        action="set",
        target={"asset": "permits-web-01"},
        args={"mode": "maintenance_page"},
    )
    receipt = await permits.apply(step, key=step.idempotency_key)
    assert (await permits.verify(receipt)).ok  # the step itself did what it said...
    during = (await probe_all(guard))["emergency-dispatch"]
    assert not during.healthy  # ...and took an essential service down with it
    assert "database proxy taken over" in during.detail

    await permits.rollback(receipt)
    assert (await probe_all(guard))["emergency-dispatch"].healthy


# --- inventory records -------------------------------------------------------------------


def test_records_of_each_kind_parse_into_probes():
    assert parse_probe({"kind": "tcp", "host": "198.18.50.10", "port": 443}) == TcpProbe(
        "198.18.50.10", 443
    )
    http = parse_probe(
        {
            "kind": "http",
            "url": "https://cad.example/health",
            "expect_status": 204,
            "json": {"path": "status", "equals": "ok"},
            "timeout_s": 2,
        }
    )
    assert http == HttpProbe("https://cad.example/health", 204, "status", "ok", 2.0)
    modbus = parse_probe(
        {"kind": "modbus", "host": "10.0.0.5", "port": 502, "unit": 3, "register": 7, "max": 2}
    )
    assert modbus == ModbusProbe("10.0.0.5", 502, 3, 7, 0, 2)


def test_lab_endpoints_resolve_to_the_lab_host_and_its_named_ports():
    def lab(config: dict) -> object:
        return parse_probe(config, lab_host="127.0.0.9", lab_ports=LAB_PORTS)

    assert lab({"kind": "http", "url": "lab:/dispatch/health"}) == HttpProbe(
        "http://127.0.0.9:15081/dispatch/health"
    )
    assert lab({"kind": "http", "url": "lab:http/healthz"}).url == "http://127.0.0.9:15081/healthz"
    assert lab({"kind": "tcp", "host": "lab", "port": "opcua"}) == TcpProbe("127.0.0.9", 14840)
    assert lab({"kind": "tcp", "host": "lab", "port": 1234}) == TcpProbe("127.0.0.9", 1234)
    signals = lab({"kind": "modbus", "host": "lab", "port": "modbus", "unit": 1, "register": 0})
    assert (signals.host, signals.port) == ("127.0.0.9", 15020)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"host": "a", "port": 1}, r"probe\.kind: expected one of"),
        ({"kind": "icmp"}, r"probe\.kind: expected one of"),
        ({"kind": "tcp", "host": "a", "port": 1, "expect_status": 200}, r"probe\.expect_status"),
        ({"kind": "tcp", "port": 1}, r"probe\.host"),
        ({"kind": "tcp", "host": "a", "port": "443"}, r"probe\.port: '443' names a lab port"),
        ({"kind": "tcp", "host": "a", "port": True}, r"probe\.port: expected an integer"),
        ({"kind": "tcp", "host": "a", "port": 1, "timeout_s": 0}, r"probe\.timeout_s"),
        ({"kind": "http"}, r"probe\.url: expected a URL"),
        ({"kind": "http", "url": "ftp://x/"}, r"probe\.url: 'ftp://x/' is not an http"),
        ({"kind": "http", "url": "lab:/x"}, r"probe\.url: 'http' names a lab port, but no lab"),
        ({"kind": "http", "url": "http://x/", "expect_status": 42}, r"probe\.expect_status"),
        ({"kind": "http", "url": "http://x/", "json": {"path": "s"}}, r"probe\.json:"),
        (
            {"kind": "http", "url": "http://x/", "json": {"path": 1, "equals": 1}},
            r"probe\.json\.path",
        ),
        ({"kind": "modbus", "host": "a", "port": 1, "register": 0}, r"probe\.unit"),
        (
            {
                "kind": "modbus",
                "host": "a",
                "port": 1,
                "unit": 1,
                "register": 0,
                "min": 3,
                "max": 1,
            },
            r"probe\.min",
        ),
    ],
)
def test_a_bad_record_is_refused_naming_the_key(config, message):
    with pytest.raises(ValueError, match=message):
        parse_probe(config)


def test_a_lab_port_name_that_does_not_exist_is_refused():
    with pytest.raises(ValueError, match=r"probe\.port: no lab port 'ldap'"):
        parse_probe({"kind": "tcp", "host": "lab", "port": "ldap"}, lab_ports=LAB_PORTS)
