"""The Modbus fallback adapter against the lab's real Modbus TCP traffic controllers."""

from __future__ import annotations

import asyncio

import pytest
from conftest import free_port

from adapters.base import PermanentAdapterError, TransientAdapterError
from adapters.service.modbus import ModbusDevice, ModbusFallbackAdapter
from contracts.adapter import Receipt, StepCommand
from orchestrator.lab.traffic import MODE_FLASH, MODE_NORMAL, MODE_REGISTER, TrafficLab

MODES = {"normal": 0, "flash": 1, "fixed_time": 2}


def device(lab: TrafficLab, unit: int = 1, **overrides) -> ModbusDevice:
    fields = {
        "asset": f"tsc-000{unit}",
        "host": lab.host,
        "port": lab.port,
        "unit": unit,
        "mode_register": MODE_REGISTER,
        "modes": MODES,
        "safe_mode": "flash",
    }
    return ModbusDevice(**{**fields, **overrides})


def adapter(lab: TrafficLab, *, keep: bool = False, **overrides) -> ModbusFallbackAdapter:
    devices = {f"tsc-000{u}": device(lab, u, **overrides) for u in lab.device_ids}
    return ModbusFallbackAdapter(devices, timeout_s=1.0, keep_connections=keep)


def command(mode: str | None = "flash", asset: str = "tsc-0001") -> StepCommand:
    return StepCommand(
        incident_id="inc-1",
        step_id="fallback",
        adapter="modbus",
        action="set",
        target={"asset": asset},
        args={} if mode is None else {"mode": mode},
    )


@pytest.mark.parametrize("keep", [False, True], ids=["per-call", "kept-connection"])
async def test_apply_verify_rollback_restores_the_previous_mode(traffic_lab, keep):
    async with adapter(traffic_lab, keep=keep) as modbus:
        plan = await modbus.plan(command())
        assert plan.before == {"mode": "normal", "value": MODE_NORMAL}
        receipt = await modbus.apply(command(), key="inc-1:fallback")
        assert await traffic_lab.read_mode(1) == MODE_FLASH
        assert (await modbus.verify(receipt)).ok
        undone = await modbus.rollback(receipt)
        assert await traffic_lab.read_mode(1) == MODE_NORMAL
        verification = await modbus.verify(undone)
    assert verification.ok
    assert verification.observed == {"mode": "normal", "value": MODE_NORMAL}
    assert traffic_lab.write_count(1) == 2


async def test_a_second_apply_writes_nothing(traffic_lab):
    modbus = adapter(traffic_lab)
    await modbus.apply(command(), key="k")
    again = await modbus.apply(command(), key="k")
    assert traffic_lab.write_count(1) == 1
    assert again.detail == "already in mode, nothing written"
    assert again.before == again.after == {"mode": "flash", "value": MODE_FLASH}


async def test_a_mode_outside_the_device_type_is_refused_and_nothing_written(traffic_lab):
    with pytest.raises(PermanentAdapterError, match=r"'blackout' is not allowed.*flash"):
        await adapter(traffic_lab).apply(command("blackout"), key="k")
    assert traffic_lab.write_count(1) == 0


async def test_without_a_mode_the_device_types_safe_mode_is_used(traffic_lab):
    receipt = await adapter(traffic_lab).apply(command(mode=None), key="k")
    assert receipt.after == {"mode": "flash", "value": MODE_FLASH}
    assert await traffic_lab.read_mode(1) == MODE_FLASH


async def test_server_down_is_transient_and_a_retry_after_it_is_back_succeeds():
    lab = TrafficLab(port=free_port())
    modbus = adapter(lab)
    with pytest.raises(TransientAdapterError, match="cannot connect to tsc-0001"):
        await modbus.apply(command(), key="k")
    await lab.start()
    try:
        receipt = await modbus.apply(command(), key="k")
        assert (await modbus.verify(receipt)).ok
    finally:
        await lab.stop()


async def test_a_kept_connection_is_redialled_after_the_controller_restarts(traffic_lab):
    async with adapter(traffic_lab, keep=True) as modbus:
        await modbus.apply(command(), key="k")
        await traffic_lab.stop()
        with pytest.raises(TransientAdapterError):
            await modbus.apply(command("normal"), key="k2")
        await traffic_lab.start()  # it comes back in normal
        receipt = await modbus.apply(command("flash"), key="k3")
    assert receipt.detail == "written"
    assert await traffic_lab.read_mode(1) == MODE_FLASH


async def test_concurrent_steps_share_one_kept_connection(traffic_lab):
    async with adapter(traffic_lab, keep=True) as modbus:
        receipts = await asyncio.gather(
            *(modbus.apply(command(asset=f"tsc-000{u}"), key=f"k{u}") for u in (1, 2, 3, 4))
        )
        checks = await asyncio.gather(*(modbus.verify(r) for r in receipts))
        assert len(modbus._connections) == 1
    assert all(c.ok for c in checks)
    assert [traffic_lab.write_count(u) for u in (1, 2, 3, 4)] == [1, 1, 1, 1]


async def test_an_exception_response_from_the_device_is_permanent(traffic_lab):
    # The lab controllers have 8 registers; register 100 is an illegal data address.
    modbus = adapter(traffic_lab, mode_register=100)
    with pytest.raises(PermanentAdapterError, match="tsc-0001 refused the read"):
        await modbus.apply(command(), key="k")


async def test_a_silent_device_times_out_as_transient(silent_port):
    modbus = ModbusFallbackAdapter(
        {"tsc-0001": ModbusDevice("tsc-0001", "127.0.0.1", silent_port, 1, 0, MODES)},
        timeout_s=0.3,
    )
    with pytest.raises(TransientAdapterError, match="reading tsc-0001 failed"):
        await modbus.apply(command(), key="k")


async def test_rollback_of_a_step_that_changed_nothing_is_a_no_op(traffic_lab):
    receipt = Receipt(
        adapter="modbus", key="k", target={"asset": "tsc-0001"}, action="set", applied=False
    )
    undone = await adapter(traffic_lab).rollback(receipt)
    assert undone.detail == "nothing to undo"
    assert traffic_lab.write_count(1) == 0


async def test_an_unknown_asset_or_action_is_permanent(traffic_lab):
    modbus = adapter(traffic_lab)
    with pytest.raises(PermanentAdapterError, match="no Modbus device"):
        await modbus.apply(command(asset="tsc-9999"), key="k")
    stop = command().model_copy(update={"action": "stop"})
    with pytest.raises(PermanentAdapterError, match="supports"):
        await modbus.apply(stop, key="k")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"safe_mode": "off"}, "safe_mode 'off'"),
        ({"modes": {"normal": 0, "huge": 70000}, "safe_mode": None}, "not a register"),
        ({"modes": {"normal": True}, "safe_mode": None}, "not a register"),
    ],
)
def test_a_device_record_that_cannot_work_is_refused_when_built(overrides, message):
    lab = TrafficLab(port=1)
    with pytest.raises(ValueError, match=message):
        device(lab, **overrides)
