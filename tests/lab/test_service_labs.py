"""The lab's service simulators as any client sees them: the OPC UA substation server,
the city web services and the Modbus traffic controllers' late writes, their write
counters, faults and the dispatch break switch."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.uaerrors import BadIdentityTokenRejected
from conftest import free_port
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.constants import ExcCodes

from orchestrator.lab.cityservice import CityServiceLab
from orchestrator.lab.substation import MODE_LOCAL_MANUAL, SubstationLab, node_id
from orchestrator.lab.traffic import MODE_FLASH, MODE_NORMAL, MODE_REGISTER, TrafficLab


@pytest.fixture
async def city() -> AsyncIterator[CityServiceLab]:
    lab = CityServiceLab(port=0, token="lab-token")  # noqa: S106 - the lab's own test token
    await lab.start()
    try:
        yield lab
    finally:
        await lab.stop()


@pytest.fixture(scope="module")
async def substation() -> AsyncIterator[SubstationLab]:
    lab = SubstationLab(port=free_port())
    await lab.start()
    try:
        yield lab
    finally:
        await lab.stop()


# --- city web services -------------------------------------------------------------------


async def test_mutating_routes_need_the_bearer_token_and_only_accepted_puts_count(city):
    async with httpx.AsyncClient(base_url=city.url) as http:
        anonymous = await http.put("/tram/mode", json={"mode": "degraded"})
        wrong = await http.put(
            "/tram/mode", json={"mode": "degraded"}, headers={"Authorization": "Bearer nope"}
        )
        auth = {"Authorization": "Bearer lab-token"}
        bad_mode = await http.put("/tram/mode", json={"mode": "hover"}, headers=auth)
        not_json = await http.put("/tram/mode", content=b"{", headers=auth)
        accepted = await http.put("/tram/mode", json={"mode": "line_of_sight"}, headers=auth)
        current = await http.get("/tram/mode")
    assert [anonymous.status_code, wrong.status_code] == [401, 401]
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert [bad_mode.status_code, not_json.status_code, accepted.status_code] == [422, 400, 200]
    assert current.json() == {"mode": "line_of_sight"}
    assert city.writes == {"tram": 1}


async def test_permits_maintenance_page_takes_dispatch_down(city):
    """The break switch: a fallback sharing a dependency with dispatch."""
    async with httpx.AsyncClient(base_url=city.url) as http:
        before = await http.get("/dispatch/health")
        await http.put(
            "/permits/mode",
            json={"mode": "maintenance_page"},
            headers={"Authorization": "Bearer lab-token"},
        )
        during = await http.get("/dispatch/health")
    assert before.json() == {"status": "ok"}
    assert during.status_code == 503
    assert during.json()["status"] == "down"


async def test_injected_faults_spare_the_simulators_own_health(city):
    city.fail_status = 500
    async with httpx.AsyncClient(base_url=city.url) as http:
        assert (await http.get("/tram/mode")).status_code == 500
        assert (await http.get("/healthz")).json() == {"status": "ok"}


async def test_the_city_lab_restarts_on_its_port_with_its_state(city):
    city.modes["tram"] = "degraded"
    port = city.port
    await city.stop()
    await city.start()
    assert city.port == port
    async with httpx.AsyncClient(base_url=city.url) as http:
        assert (await http.get("/tram/mode")).json() == {"mode": "degraded"}


async def test_a_busy_port_fails_start_with_oserror():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        lab = CityServiceLab(port=taken.getsockname()[1])
        with pytest.raises(OSError, match="Address already in use"):
            await lab.start()


# --- OPC UA substations ------------------------------------------------------------------


async def test_substations_expose_typed_points_and_count_only_client_writes(substation):
    await substation.set("South", "ControlMode", 0)  # from inside the RTU: not counted
    async with Client(substation.endpoint, timeout=2) as client:
        control = client.get_node(node_id("South"))
        assert await control.read_data_type_as_variant_type() == ua.VariantType.Int32
        await control.write_value(ua.Variant(MODE_LOCAL_MANUAL, ua.VariantType.Int32))
        frequency = client.get_node(node_id("South", "Frequency"))
        assert await frequency.read_value() == 50.0
        with pytest.raises(ua.UaStatusCodeError):
            await frequency.write_value(ua.Variant(49.0, ua.VariantType.Double))
        health = await client.get_node(node_id("South", "Health")).read_value()
    assert health == "ok"
    assert await substation.read("South") == MODE_LOCAL_MANUAL
    assert substation.write_count("South") == 1
    assert substation.write_count("South", "Frequency") == 0


async def test_a_restarted_substation_keeps_its_values(substation):
    await substation.set("North", "ControlMode", MODE_LOCAL_MANUAL)
    await substation.stop()
    await substation.start()
    async with Client(substation.endpoint, timeout=2) as client:
        assert await client.get_node(node_id("North")).read_value() == MODE_LOCAL_MANUAL


async def test_a_substation_with_credentials_refuses_anonymous_sessions():
    lab = SubstationLab(port=free_port(), credentials=("operator", "pw"))
    await lab.start()
    try:
        with pytest.raises(BadIdentityTokenRejected):
            await Client(lab.endpoint, timeout=2).connect()
        client = Client(lab.endpoint, timeout=2)
        client.set_user("operator")
        client.set_password("pw")
        async with client:
            assert await client.get_node(node_id("North")).read_value() == 0
    finally:
        await lab.stop()


# --- Modbus traffic controllers: late writes ----------------------------------------------


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)


@pytest.fixture
async def modbus(traffic_lab: TrafficLab) -> AsyncIterator[AsyncModbusTcpClient]:
    client = AsyncModbusTcpClient(traffic_lab.host, port=traffic_lab.port, timeout=30, retries=0)
    assert await client.connect()
    try:
        yield client
    finally:
        client.close()


async def test_a_held_write_is_counted_on_arrival_and_applied_and_answered_when_released(
    traffic_lab, modbus
):
    release = traffic_lab.land_late(1)
    write = asyncio.create_task(modbus.write_register(MODE_REGISTER, MODE_FLASH, device_id=1))
    await until(lambda: traffic_lab.write_count(1) == 1, "the controller received the write")
    assert traffic_lab.writes_in_flight == 1
    assert await traffic_lab.read_mode(1) == MODE_NORMAL, "applied before it was released"
    assert not write.done()
    release.set()
    assert not (await write).isError()
    assert await traffic_lab.read_mode(1) == MODE_FLASH
    assert traffic_lab.landed == [(1, MODE_REGISTER, MODE_FLASH)]
    assert traffic_lab.writes_in_flight == 0


async def test_a_write_acknowledged_first_answers_exception_05_and_is_applied_later(
    traffic_lab, modbus
):
    release = traffic_lab.land_late(1, acknowledge_first=True)
    response = await modbus.write_register(MODE_REGISTER, MODE_FLASH, device_id=1)
    assert response.isError()
    assert response.exception_code == ExcCodes.ACKNOWLEDGE
    assert await traffic_lab.read_mode(1) == MODE_NORMAL
    assert traffic_lab.writes_in_flight == 1
    release.set()
    await until(lambda: traffic_lab.writes_in_flight == 0, "the write was applied")
    assert await traffic_lab.read_mode(1) == MODE_FLASH
    assert traffic_lab.landed == [(1, MODE_REGISTER, MODE_FLASH)]


async def test_only_the_next_writes_land_late_a_delay_releases_them_and_reads_are_counted(
    traffic_lab, modbus
):
    traffic_lab.land_late(1, delay_s=0.2)
    slow = modbus.write_register(MODE_REGISTER, MODE_FLASH, device_id=1)
    assert not (await slow).isError()
    fast = await modbus.write_register(MODE_REGISTER, MODE_NORMAL, device_id=1)
    assert not fast.isError()
    assert traffic_lab.landed == [(1, MODE_REGISTER, MODE_FLASH), (1, MODE_REGISTER, MODE_NORMAL)]
    assert await traffic_lab.read_mode(1) == MODE_NORMAL
    assert traffic_lab.reads[1] == 1, "one read, the writes not counted as reads"
