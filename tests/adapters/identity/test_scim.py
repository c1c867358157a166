"""The SCIM adapter against a real scim2-server on loopback (the lab's ScimLab)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import free_port

from adapters.base import PermanentAdapterError, TransientAdapterError
from adapters.identity.scim import ScimAdapter, ScimService
from adapters.secrets import SecretRef
from contracts.adapter import StepCommand
from orchestrator.lab.scim import ScimLab

ACCOUNTS = ("svc-scada", "svc-permits")


@pytest.fixture
async def lab(tmp_path, start_lab):
    return await start_lab(ScimLab(port=free_port(), directory=tmp_path, accounts=ACCOUNTS))


def service(lab: ScimLab, **record) -> ScimService:
    config = {"endpoint": "lab", "token_file": "scim-token", **record}
    return ScimService.from_config(
        "scim-idp", config, url=lab.url, secrets_dir=lab.directory / "secrets"
    )


def deny(identity: str = "svc-scada", system: str = "scim-idp") -> StepCommand:
    return StepCommand(
        incident_id="inc-1",
        step_id="revoke-scim",
        adapter="scim",
        action="deny",
        target={"identity": identity, "system": system},
    )


async def test_apply_deactivates_and_rollback_reactivates(lab):
    adapter = ScimAdapter({"scim-idp": service(lab)})
    command = deny()

    receipt = await adapter.apply(command, key=command.idempotency_key)
    assert receipt.applied
    assert receipt.before["active"] is True
    assert receipt.after["active"] is False
    assert (await lab.read_user("svc-scada"))["active"] is False
    assert (await lab.read_user("svc-permits"))["active"] is True
    assert (await adapter.verify(receipt)).ok

    undone = await adapter.rollback(receipt)
    assert (await lab.read_user("svc-scada"))["active"] is True
    check = await adapter.verify(undone)
    assert check.ok, check.detail
    assert check.observed["active"] is True


async def test_remove_groups_variant_restores_memberships(lab):
    adapter = ScimAdapter({"scim-idp": service(lab, remove_groups=True)})
    command = deny()

    receipt = await adapter.apply(command, key=command.idempotency_key)
    assert receipt.before["groups"] == [lab.group_id]
    assert receipt.after["groups"] == []
    assert await lab.group_members() == ["svc-permits"]
    assert (await adapter.verify(receipt)).ok

    undone = await adapter.rollback(receipt)
    assert await lab.group_members() == ["svc-permits", "svc-scada"]
    assert (await lab.read_user("svc-scada"))["active"] is True
    assert (await adapter.verify(undone)).ok


async def test_apply_again_writes_nothing_and_says_so(lab):
    adapter = ScimAdapter({"scim-idp": service(lab, remove_groups=True)})
    command = deny()
    await adapter.apply(command, key=command.idempotency_key)
    version = (await lab.read_user("svc-scada"))["meta"]["version"]

    again = await adapter.apply(command, key=command.idempotency_key)

    assert "nothing written" in again.detail
    assert (await lab.read_user("svc-scada"))["meta"]["version"] == version


async def test_rollback_twice_is_a_no_op_the_second_time(lab):
    adapter = ScimAdapter({"scim-idp": service(lab)})
    command = deny()
    receipt = await adapter.apply(command, key=command.idempotency_key)
    await adapter.rollback(receipt)
    version = (await lab.read_user("svc-scada"))["meta"]["version"]

    again = await adapter.rollback(receipt)

    assert "nothing written" in again.detail
    assert (await lab.read_user("svc-scada"))["meta"]["version"] == version


async def test_rollback_of_a_receipt_that_applied_nothing_touches_nothing(lab):
    adapter = ScimAdapter({"scim-idp": service(lab)})
    command = deny()
    receipt = await adapter.apply(command, key=command.idempotency_key)

    result = await adapter.rollback(receipt.model_copy(update={"applied": False}))

    assert result.detail == "nothing to undo"
    assert (await lab.read_user("svc-scada"))["active"] is False


async def test_plan_reads_the_user_without_changing_it(lab):
    adapter = ScimAdapter({"scim-idp": service(lab, remove_groups=True)})
    version = (await lab.read_user("svc-scada"))["meta"]["version"]

    plan = await adapter.plan(deny())

    assert plan.before["active"] is True
    assert plan.after == {**plan.before, "active": False, "groups": []}
    assert (await lab.read_user("svc-scada"))["meta"]["version"] == version
    assert await lab.group_members() == ["svc-permits", "svc-scada"]


async def test_verify_fails_when_the_account_was_reactivated(lab):
    adapter = ScimAdapter({"scim-idp": service(lab)})
    command = deny()
    receipt = await adapter.apply(command, key=command.idempotency_key)
    await adapter.rollback(receipt)  # someone re-enables the account behind our back

    check = await adapter.verify(receipt)

    assert not check.ok
    assert "active is True" in check.detail


async def test_stopped_server_is_a_transient_error(lab):
    adapter = ScimAdapter({"scim-idp": service(lab)})
    await lab.stop()

    with pytest.raises(TransientAdapterError, match="cannot reach"):
        await adapter.apply(deny(), key="inc-1:revoke-scim")


async def test_wrong_token_is_permanent_and_not_echoed(lab, tmp_path):
    wrong = tmp_path / "wrong-token"
    wrong.write_text("not-the-token-4f1c9e\n")
    wrong.chmod(0o600)
    good = service(lab)
    bad = ScimService(system=good.system, url=good.url, token=SecretRef(file=wrong))
    adapter = ScimAdapter({"scim-idp": bad})

    with pytest.raises(PermanentAdapterError) as raised:
        await adapter.apply(deny(), key="inc-1:revoke-scim")

    message = str(raised.value)
    assert str(wrong) in message
    assert "not-the-token-4f1c9e" not in message
    assert lab.token_file.read_text().strip() not in message
    assert (await lab.read_user("svc-scada"))["active"] is True


async def test_unknown_account_is_permanent(lab):
    adapter = ScimAdapter({"scim-idp": service(lab)})

    with pytest.raises(PermanentAdapterError, match="no SCIM user named 'svc-nobody'"):
        await adapter.apply(deny("svc-nobody"), key="k")


async def test_unknown_system_and_action_are_permanent(lab):
    adapter = ScimAdapter({"scim-idp": service(lab)})

    with pytest.raises(PermanentAdapterError, match="no SCIM system"):
        await adapter.apply(deny(system="scim-elsewhere"), key="k")
    with pytest.raises(PermanentAdapterError, match="supports"):
        await adapter.plan(deny().model_copy(update={"action": "allow"}))


def test_from_config_names_bad_keys_and_values(tmp_path: Path):
    with pytest.raises(ValueError, match="remove_group"):
        ScimService.from_config(
            "scim-idp", {"token_file": "t", "remove_group": True}, url="http://x"
        )
    with pytest.raises(ValueError, match="no lab URL"):
        ScimService.from_config("scim-idp", {"token_file": "t"})
    with pytest.raises(ValueError, match="token_file or token_env"):
        ScimService.from_config("scim-idp", {"endpoint": "https://idp.example/scim/v2"})
    with pytest.raises(ValueError, match="remove_groups"):
        ScimService.from_config(
            "scim-idp", {"token_env": "T", "remove_groups": "yes"}, url="http://x"
        )


def test_from_config_reads_a_full_inventory_record(tmp_path: Path):
    record = {
        "description": "Identity provider",
        "adapter": "scim",
        "zone": "municipal-it",
        "revocation": {"action": "deny", "reversible": True},
        "endpoint": "https://idp.example/scim/v2/",
        "token_file": "scim-token",
        "remove_groups": True,
    }
    service = ScimService.from_config("scim-idp", record, secrets_dir=tmp_path)
    assert service.url == "https://idp.example/scim/v2"
    assert service.token.file == tmp_path / "scim-token"
    assert service.remove_groups


async def test_lab_token_file_is_private(lab):
    assert lab.token_file.stat().st_mode & 0o777 == 0o600


async def test_capabilities_name_the_systems(lab):
    caps = await ScimAdapter({"scim-idp": service(lab)}).capabilities()
    assert caps.usable
    assert caps.actions == ["deny"]
    assert "scim-idp" in caps.detail
