"""The OPC UA fallback adapter against the lab's real OPC UA substation server."""

from __future__ import annotations

import pytest
from conftest import free_port

from adapters.base import PermanentAdapterError, TransientAdapterError
from adapters.secrets import SecretRef
from adapters.service.opcua import OpcUaFallbackAdapter, OpcUaNode
from contracts.adapter import StepCommand
from orchestrator.lab.substation import (
    MODE_LOCAL_MANUAL,
    MODE_REMOTE,
    NAMESPACE,
    SubstationLab,
    node_id,
)

MODES = {"remote": MODE_REMOTE, "local_manual": MODE_LOCAL_MANUAL}
CONTROL = node_id("North")


def rtu(endpoint: str, **overrides) -> OpcUaNode:
    fields = {
        "asset": "rtu-e01",
        "endpoint": endpoint,
        "node_id": CONTROL,
        "modes": MODES,
        "safe_mode": "local_manual",
    }
    return OpcUaNode(**{**fields, **overrides})


def adapter(endpoint: str, *, keep: bool = False, **overrides) -> OpcUaFallbackAdapter:
    return OpcUaFallbackAdapter(
        {"rtu-e01": rtu(endpoint, **overrides)}, timeout_s=1.0, keep_connections=keep
    )


def command(mode: str | None = "local_manual") -> StepCommand:
    return StepCommand(
        incident_id="inc-1",
        step_id="fallback",
        adapter="opcua",
        action="set",
        target={"asset": "rtu-e01"},
        args={} if mode is None else {"mode": mode},
    )


@pytest.mark.parametrize("keep", [False, True], ids=["per-call", "kept-session"])
async def test_apply_verify_rollback_restores_the_previous_mode(substation, keep):
    async with adapter(substation.endpoint, keep=keep) as opcua:
        plan = await opcua.plan(command())
        assert plan.before == {"mode": "remote", "value": MODE_REMOTE}
        receipt = await opcua.apply(command(), key="inc-1:fallback")
        assert await substation.read("North") == MODE_LOCAL_MANUAL
        assert (await opcua.verify(receipt)).ok
        undone = await opcua.rollback(receipt)
        assert await substation.read("North") == MODE_REMOTE
        verification = await opcua.verify(undone)
    assert verification.ok
    assert verification.observed == {"mode": "remote", "value": MODE_REMOTE}
    assert substation.write_count("North") == 2


async def test_a_second_apply_writes_nothing(substation):
    async with adapter(substation.endpoint, keep=True) as opcua:
        await opcua.apply(command(), key="k")
        again = await opcua.apply(command(), key="k")
    assert substation.write_count("North") == 1
    assert again.detail == "already in mode, nothing written"


async def test_a_mode_outside_the_device_type_is_refused_and_nothing_written(substation):
    with pytest.raises(PermanentAdapterError, match=r"'islanded' is not allowed"):
        await adapter(substation.endpoint).apply(command("islanded"), key="k")
    assert substation.write_count("North") == 0


async def test_a_node_of_another_type_is_refused_before_anything_is_written(substation):
    # Configured as a Boolean point, but ControlMode is an Int32 on the RTU.
    opcua = adapter(
        substation.endpoint,
        variant_type="Boolean",
        modes={"on": True, "off": False},
        safe_mode=None,
    )
    with pytest.raises(PermanentAdapterError, match="is Int32, configured as Boolean"):
        await opcua.apply(command("on"), key="k")
    # And the other way round: an Int32 mode aimed at the Boolean breaker point.
    breaker = adapter(substation.endpoint, node_id=node_id("North", "BreakerClosed"))
    with pytest.raises(PermanentAdapterError, match="is Boolean, configured as Int32"):
        await breaker.apply(command(), key="k")
    assert sum(substation.writes.values()) == 0


async def test_a_boolean_point_switches_and_rolls_back(substation):
    opcua = adapter(
        substation.endpoint,
        node_id=node_id("South", "BreakerClosed"),
        variant_type="Boolean",
        modes={"closed": True, "open": False},
        safe_mode="open",
    )
    receipt = await opcua.apply(command(None), key="k")
    assert receipt.before == {"mode": "closed", "value": True}
    assert await substation.read("South", "BreakerClosed") is False
    await opcua.rollback(receipt)
    assert await substation.read("South", "BreakerClosed") is True


async def test_a_node_id_by_namespace_uri_finds_the_same_point(substation):
    opcua = adapter(substation.endpoint, node_id=f"nsu={NAMESPACE};s=North.ControlMode")
    receipt = await opcua.apply(command(), key="k")
    assert (await opcua.verify(receipt)).ok
    assert await substation.read("North") == MODE_LOCAL_MANUAL


async def test_a_read_only_point_refuses_the_write_permanently(substation):
    opcua = adapter(
        substation.endpoint,
        node_id=node_id("North", "Frequency"),
        variant_type="Double",
        modes={"low": 49.0, "high": 51.0},
        safe_mode=None,
    )
    with pytest.raises(PermanentAdapterError, match=r"writing .*Frequency.* refused: Bad"):
        await opcua.apply(command("low"), key="k")


async def test_an_unknown_node_is_permanent(substation):
    opcua = adapter(substation.endpoint, node_id=node_id("Nowhere"))
    with pytest.raises(PermanentAdapterError, match="BadNodeIdUnknown"):
        await opcua.apply(command(), key="k")


async def test_server_down_is_transient_and_a_retry_after_it_is_back_succeeds(substation):
    async with adapter(substation.endpoint, keep=True) as opcua:
        await opcua.plan(command())  # a session is open when the server goes away
        await substation.stop()
        with pytest.raises(TransientAdapterError, match="cannot connect to rtu-e01"):
            await opcua.apply(command(), key="k")
        await substation.start()
        receipt = await opcua.apply(command(), key="k")
        assert (await opcua.verify(receipt)).ok
    assert substation.write_count("North") == 1


async def test_nothing_listening_is_transient():
    opcua = adapter(f"opc.tcp://127.0.0.1:{free_port()}/bulkhead/substation/")
    with pytest.raises(TransientAdapterError, match="ConnectionRefusedError"):
        await opcua.apply(command(), key="k")


async def test_a_server_that_never_answers_times_out_as_transient(silent_port):
    opcua = OpcUaFallbackAdapter(
        {"rtu-e01": rtu(f"opc.tcp://127.0.0.1:{silent_port}/")}, timeout_s=0.3
    )
    with pytest.raises(TransientAdapterError, match="TimeoutError"):
        await opcua.apply(command(), key="k")


async def test_login_with_the_right_password_works_and_a_wrong_one_is_permanent(monkeypatch):
    lab = SubstationLab(port=free_port(), credentials=("bulkhead", "s3cret-pw"))
    await lab.start()
    try:
        monkeypatch.setenv("BH_TEST_OPCUA_PW", "wrong-pw")
        password = SecretRef(env="BH_TEST_OPCUA_PW")
        opcua = adapter(lab.endpoint, username="bulkhead", password=password)
        with pytest.raises(PermanentAdapterError, match="BadUserAccessDenied") as refused:
            await opcua.apply(command(), key="k")
        assert "wrong-pw" not in str(refused.value)
        assert "env BH_TEST_OPCUA_PW" in str(refused.value)
        anonymous = adapter(lab.endpoint)
        with pytest.raises(PermanentAdapterError, match="anonymous"):
            await anonymous.apply(command(), key="k")
        monkeypatch.setenv("BH_TEST_OPCUA_PW", "s3cret-pw")  # rotated: read at connect
        receipt = await opcua.apply(command(), key="k")
        assert (await opcua.verify(receipt)).ok
    finally:
        await lab.stop()


def test_from_config_resolves_the_lab_and_reads_the_password_from_a_file(tmp_path):
    record = {
        "endpoint": "lab",
        "node_id": CONTROL,
        "username": "bulkhead",
        "password_file": "opcua-password",
    }
    node = OpcUaNode.from_config(
        "rtu-e01",
        record,
        modes=MODES,
        safe_mode="local_manual",
        lab_endpoint="opc.tcp://127.0.0.1:14840/bulkhead/substation/",
        secrets_base=tmp_path,
    )
    assert node.endpoint == "opc.tcp://127.0.0.1:14840/bulkhead/substation/"
    assert node.password == SecretRef(file=tmp_path / "opcua-password")
    assert node.variant_type == "Int32"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"variant_type": "ExtensionObject"}, "variant_type 'ExtensionObject'"),
        ({"modes": {"remote": 0, "local_manual": 2**40}}, "is not a Int32"),
        ({"modes": {"remote": False, "local_manual": True}}, "is not a Int32"),
        ({"safe_mode": "islanded"}, "safe_mode 'islanded'"),
        ({"node_id": "not a node id"}, "not an OPC UA node id"),
        ({"username": "bulkhead"}, "username and password go together"),
    ],
)
def test_a_node_record_that_cannot_work_is_refused_when_built(overrides, message):
    with pytest.raises(ValueError, match=message):
        rtu("opc.tcp://127.0.0.1:1/", **overrides)
