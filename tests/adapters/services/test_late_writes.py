"""Late writes (issue #15): a write that outlasts the Modbus adapter's timeout still lands
on the controller. No retry or rollback may start while it can, the restore is the last
write to land, and the receipts list every write the adapter made."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from adapters.base import TransientAdapterError
from adapters.service.modbus import ModbusDevice, ModbusFallbackAdapter
from contracts.adapter import Receipt, StepCommand
from orchestrator.lab.traffic import (
    MODE_FIXED_TIME,
    MODE_FLASH,
    MODE_NORMAL,
    MODE_REGISTER,
    TrafficLab,
)

MODES = {"normal": MODE_NORMAL, "flash": MODE_FLASH, "fixed_time": MODE_FIXED_TIME}
KEY = "inc-1:fallback"
TIMEOUT_S = 0.3
# Generous: a settling adapter stops waiting as soon as the written value shows, so only a
# write that never lands costs the whole period.
SETTLE_S = 30.0
NORMAL = {"mode": "normal", "value": MODE_NORMAL}


def adapter(
    lab: TrafficLab, *, keep: bool = False, timeout_s: float = TIMEOUT_S, settle_s: float = SETTLE_S
) -> ModbusFallbackAdapter:
    devices = {
        f"tsc-000{unit}": ModbusDevice(
            f"tsc-000{unit}", lab.host, lab.port, unit, MODE_REGISTER, MODES, "flash"
        )
        for unit in lab.device_ids
    }
    return ModbusFallbackAdapter(
        devices, timeout_s=timeout_s, keep_connections=keep, settle_s=settle_s
    )


def command(mode: str = "flash", unit: int = 1) -> StepCommand:
    return StepCommand(
        incident_id="inc-1",
        step_id="fallback",
        adapter="modbus",
        action="set",
        target={"asset": f"tsc-000{unit}"},
        args={"mode": mode},
    )


def outcomes(receipt: Receipt) -> list[tuple[str, int, str]]:
    return [(write.purpose, write.value, write.outcome) for write in receipt.writes]


def landed(*values: int) -> list[tuple[int, int, int]]:
    """The lab's record of values applied to unit 1's mode register, in order."""
    return [(1, MODE_REGISTER, value) for value in values]


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)


# --- a write that outlasts the timeout ---------------------------------------------------


@pytest.mark.parametrize("keep", [False, True], ids=["per-call", "kept-connection"])
async def test_a_timed_out_write_is_waited_out_so_retry_and_release_leave_the_controller_normal(
    traffic_lab, keep
):
    """The drill's second write: the first outlasts the timeout and lands late; its attempt
    reports the failure only once that happened, so the retry writes nothing, and the
    release is the last write to land."""
    traffic_lab.land_late(1, delay_s=1.0)  # applied and answered 1 s after it arrives
    async with adapter(traffic_lab, keep=keep) as modbus:
        plan = await modbus.plan(command())
        with pytest.raises(TransientAdapterError, match=r"unconfirmed: .* showed the value"):
            await modbus.apply(command(), key=KEY)
        assert traffic_lab.writes_in_flight == 0, "the attempt ended with its write in flight"
        assert traffic_lab.landed == landed(MODE_FLASH)
        receipt = await modbus.apply(command(), key=KEY)
        undone = await modbus.rollback(receipt.model_copy(update={"before": plan.before}))
    assert await traffic_lab.read_mode(1) == MODE_NORMAL
    assert traffic_lab.write_count(1) == 2
    assert traffic_lab.landed == landed(MODE_FLASH, MODE_NORMAL)
    assert traffic_lab.writes_in_flight == 0
    assert outcomes(receipt) == [("apply", MODE_FLASH, "landed_late")]
    assert receipt.detail.startswith("already in mode, nothing written; earlier attempts: apply")
    assert outcomes(undone) == [
        ("apply", MODE_FLASH, "landed_late"),
        ("rollback", MODE_NORMAL, "acknowledged"),
    ]


async def test_a_retry_and_a_release_racing_a_timed_out_write_queue_behind_its_fence(traffic_lab):
    release_write = traffic_lab.land_late(1)  # held until this test lets it land
    modbus = adapter(traffic_lab)
    plan = await modbus.plan(command())
    first = asyncio.create_task(modbus.apply(command(), key=KEY))
    await until(lambda: traffic_lab.write_count(1) == 1, "the controller holds the write")
    retry = asyncio.create_task(modbus.apply(command(), key=KEY))
    await until(lambda: modbus.queued_writers("tsc-0001") == 1, "the retry queues")
    restore = Receipt(
        adapter="modbus",
        key=KEY,
        target={"asset": "tsc-0001"},
        action="set",
        applied=True,
        before=plan.before,
        after={"mode": "flash", "value": MODE_FLASH},
    )
    release = asyncio.create_task(modbus.rollback(restore))
    await until(lambda: modbus.queued_writers("tsc-0001") == 2, "the release queues")
    # Plan and apply read once each; more reads are the timed-out attempt watching the point.
    await until(lambda: traffic_lab.reads[1] > 2, "the first attempt timed out and settles")
    release_write.set()
    failed, receipt, undone = await asyncio.gather(first, retry, release, return_exceptions=True)
    assert isinstance(failed, TransientAdapterError)
    assert isinstance(receipt, Receipt)
    assert isinstance(undone, Receipt)
    assert outcomes(receipt) == [("apply", MODE_FLASH, "landed_late")], "the retry wrote nothing"
    assert outcomes(undone) == [("rollback", MODE_NORMAL, "acknowledged")]
    assert await traffic_lab.read_mode(1) == MODE_NORMAL
    assert traffic_lab.write_count(1) == 2
    assert traffic_lab.landed == landed(MODE_FLASH, MODE_NORMAL)
    assert traffic_lab.writes_in_flight == 0


async def test_a_write_acknowledged_for_later_is_waited_out_like_an_unanswered_one(traffic_lab):
    """Exception 05 ACKNOWLEDGE: the controller took the write and will apply it later."""
    traffic_lab.land_late(1, delay_s=0.5, acknowledge_first=True)
    modbus = adapter(traffic_lab)
    with pytest.raises(TransientAdapterError, match="showed the value"):
        await modbus.apply(command(), key=KEY)
    assert traffic_lab.landed == landed(MODE_FLASH)
    receipt = await modbus.apply(command(), key=KEY)
    assert outcomes(receipt) == [("apply", MODE_FLASH, "landed_late")]
    assert traffic_lab.write_count(1) == 1


async def test_a_write_that_never_shows_is_reported_once_the_settle_period_is_over(traffic_lab):
    traffic_lab.land_late(1)  # held until the lab stops: longer than the device type allows
    modbus = adapter(traffic_lab, timeout_s=0.2, settle_s=0.5)
    with pytest.raises(TransientAdapterError, match=r"did not show the value within the 0.5 s"):
        await modbus.apply(command(), key=KEY)
    receipt = await modbus.apply(command(), key=KEY)
    assert outcomes(receipt) == [
        ("apply", MODE_FLASH, "not_seen"),
        ("apply", MODE_FLASH, "acknowledged"),
    ]
    assert receipt.detail.startswith("written; earlier attempts: apply wrote 1")


# --- rollback re-checks the target after the last write that may land ----------------


async def test_a_late_write_landing_over_the_restore_is_overwritten_and_reported(traffic_lab):
    """Another step's apply was cancelled with its write still held by the controller: the
    release restores at once, watches the point until that write landed, and restores
    again."""
    modbus = adapter(traffic_lab)
    applied = await modbus.apply(command("flash"), key=KEY)
    release_write = traffic_lab.land_late(1)
    other = asyncio.create_task(modbus.apply(command("fixed_time"), key="inc-2:fallback"))
    await until(lambda: traffic_lab.write_count(1) == 2, "the controller holds the write")
    other.cancel()
    with pytest.raises(asyncio.CancelledError):
        await other
    release = asyncio.create_task(modbus.rollback(applied))
    await until(lambda: traffic_lab.landed[-1:] == landed(MODE_NORMAL), "the restore landed")
    release_write.set()
    undone = await release
    assert await traffic_lab.read_mode(1) == MODE_NORMAL
    assert traffic_lab.landed == landed(MODE_FLASH, MODE_NORMAL, MODE_FIXED_TIME, MODE_NORMAL)
    assert traffic_lab.writes_in_flight == 0
    assert outcomes(undone) == [
        ("apply", MODE_FLASH, "acknowledged"),
        ("rollback", MODE_NORMAL, "acknowledged"),
        ("rollback", MODE_NORMAL, "acknowledged"),
    ]
    assert undone.writes[-1].detail == f"after a late write of {MODE_FIXED_TIME} landed"
    assert undone.detail.endswith("were overwritten: 2 (fixed_time)")


async def test_a_rollback_with_nothing_in_flight_reads_the_restore_back_once(traffic_lab):
    modbus = adapter(traffic_lab)
    applied = await modbus.apply(command(), key=KEY)
    undone = await modbus.rollback(applied)
    assert undone.detail == "restored previous mode"
    assert undone.after == NORMAL
    assert traffic_lab.landed == landed(MODE_FLASH, MODE_NORMAL)
    assert traffic_lab.reads[1] == 3, "apply's read, rollback's read and its read-back"


# --- the fence ---------------------------------------------------------------------------


async def test_two_applies_to_one_point_are_serialized(traffic_lab):
    release_write = traffic_lab.land_late(1)
    modbus = adapter(traffic_lab, timeout_s=30.0)
    flash = asyncio.create_task(modbus.apply(command("flash"), key="a"))
    await until(lambda: traffic_lab.write_count(1) == 1, "the first write is held")
    fixed = asyncio.create_task(modbus.apply(command("fixed_time"), key="b"))
    await until(lambda: modbus.queued_writers("tsc-0001") == 1, "the second apply queues")
    release_write.set()
    _, second = await asyncio.gather(flash, fixed)
    assert second.before == {"mode": "flash", "value": MODE_FLASH}, "it read after the write"
    assert traffic_lab.landed == landed(MODE_FLASH, MODE_FIXED_TIME)


async def test_applies_to_two_points_are_not_serialized(traffic_lab):
    releases = [traffic_lab.land_late(unit) for unit in (1, 2)]
    modbus = adapter(traffic_lab, timeout_s=30.0)
    applies = [asyncio.create_task(modbus.apply(command(unit=u), key=f"k{u}")) for u in (1, 2)]
    await until(lambda: traffic_lab.writes_in_flight == 2, "both writes are in flight at once")
    for release_write in releases:
        release_write.set()
    receipts = await asyncio.gather(*applies)
    assert [r.detail for r in receipts] == ["written", "written"]
