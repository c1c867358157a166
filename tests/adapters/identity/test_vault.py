"""The Vault adapter against a real OpenBao dev server on loopback (the lab's VaultLab)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import hvac
import hvac.exceptions
import pytest
from conftest import free_port

from adapters.base import PermanentAdapterError, TransientAdapterError
from adapters.identity.vault import VaultAdapter, VaultServer
from adapters.secrets import SecretRef
from contracts.adapter import StepCommand
from orchestrator.lab.vault import VaultLab

PASSWORDS = {"svc-scada": "scada-old-password-1", "svc-signals": "signals-password-2"}
PREFIXES = ["auth/{auth_mount}/login/{identity}", "pki/issue/{identity}"]


@pytest.fixture
async def lab(tmp_path, start_lab):
    return await start_lab(VaultLab(port=free_port(), directory=tmp_path, accounts=PASSWORDS))


def server(lab: VaultLab, **record) -> VaultServer:
    config = {
        "endpoint": "lab",
        "token_file": "vault-token",
        "lease_prefixes": PREFIXES,
        "probe_password_file": "identities/{identity}.vault-password",
        **record,
    }
    return VaultServer.from_config(
        "vault-city", config, url=lab.url, secrets_dir=lab.directory / "secrets"
    )


def adapter_for(lab: VaultLab, **record) -> VaultAdapter:
    return VaultAdapter({"vault-city": server(lab, **record)})


def deny(identity: str = "svc-scada", system: str = "vault-city") -> StepCommand:
    return StepCommand(
        incident_id="inc-1",
        step_id="revoke-vault",
        adapter="vault",
        action="deny",
        target={"identity": identity, "system": system},
    )


@contextmanager
def vault(lab: VaultLab, token: str = "") -> Iterator[hvac.Client]:
    """An independent client: what the account (or an operator) sees, not the adapter."""
    client = hvac.Client(url=lab.url, token=token, timeout=5)
    try:
        yield client
    finally:
        client.adapter.close()


def account_token(lab: VaultLab, account: str = "svc-scada") -> str:
    return lab.account_token_file(account).read_text().strip()


def token_works(lab: VaultLab, token: str) -> bool:
    with vault(lab, token) as client:
        try:
            client.auth.token.lookup_self()
        except hvac.exceptions.Forbidden:
            return False
    return True


def lease_exists(lab: VaultLab, lease_id: str) -> bool:
    with vault(lab, lab.root_token_file.read_text().strip()) as client:
        try:
            client.sys.read_lease(lease_id)
        except hvac.exceptions.InvalidRequest:
            return False
    return True


async def test_apply_revokes_tokens_leases_and_login(lab):
    token = account_token(lab)
    lease = lab.leases["svc-scada"][0]
    assert token_works(lab, token)
    assert lease_exists(lab, lease)
    command = deny()

    receipt = await adapter_for(lab).apply(command, key=command.idempotency_key)

    assert not token_works(lab, token)
    assert not lease_exists(lab, lease)
    with vault(lab) as client, pytest.raises(hvac.exceptions.InvalidRequest):
        client.auth.userpass.login("svc-scada", PASSWORDS["svc-scada"])
    assert receipt.applied
    assert len(receipt.before["accessors"]) == 1
    assert lease in receipt.before["leases"]
    assert receipt.after == {"revoked": True}
    assert token not in receipt.model_dump_json()
    check = await adapter_for(lab).verify(receipt)
    assert check.ok, check.detail
    assert check.observed["probe_login"] == "refused"


async def test_other_accounts_keep_their_access(lab):
    await adapter_for(lab).apply(deny(), key="inc-1:revoke-vault")

    assert token_works(lab, account_token(lab, "svc-signals"))
    assert lease_exists(lab, lab.leases["svc-signals"][0])
    with vault(lab) as client:
        client.auth.userpass.login("svc-signals", PASSWORDS["svc-signals"])
        client.auth.token.revoke_self()


async def test_tokens_the_account_minted_are_revoked_too(lab):
    with vault(lab, account_token(lab)) as client:
        child = client.auth.token.create(ttl="1h")["auth"]["client_token"]
    assert token_works(lab, child)

    await adapter_for(lab).apply(deny(), key="inc-1:revoke-vault")

    assert not token_works(lab, child)


async def test_second_apply_finds_nothing_left_and_says_so(lab):
    adapter = adapter_for(lab)
    command = deny()
    await adapter.apply(command, key=command.idempotency_key)

    again = await adapter.apply(command, key=command.idempotency_key)

    assert again.before == {"accessors": [], "leases": []}
    assert "nothing left to revoke" in again.detail
    assert (await adapter.verify(again)).ok


async def test_plan_lists_what_would_go_and_changes_nothing(lab):
    token = account_token(lab)

    plan = await adapter_for(lab).plan(deny())

    assert len(plan.before["accessors"]) == 1
    assert lab.leases["svc-scada"][0] in plan.before["leases"]
    assert any("irreversible" in change for change in plan.changes)
    assert token_works(lab, token)
    assert lease_exists(lab, lab.leases["svc-scada"][0])
    with vault(lab) as client:
        client.auth.userpass.login("svc-scada", PASSWORDS["svc-scada"])
        client.auth.token.revoke_self()


async def test_verify_sees_an_account_that_was_not_revoked(lab):
    adapter = adapter_for(lab)
    receipt = await adapter.apply(deny("svc-signals"), key="other")
    # The same proof, pointed at an account nobody revoked.
    untouched = receipt.model_copy(update={"target": deny().target})

    check = await adapter.verify(untouched)

    assert not check.ok
    assert check.observed["live_tokens"]
    assert check.observed["probe_login"] == "accepted"


async def test_rollback_says_irreversible_and_changes_nothing(lab):
    adapter = adapter_for(lab)
    token = account_token(lab)
    receipt = await adapter.apply(deny(), key="inc-1:revoke-vault")

    undone = await adapter.rollback(receipt)

    assert undone.applied == receipt.applied
    assert undone.before == receipt.before
    assert "irreversible" in undone.detail
    assert not token_works(lab, token)
    assert (await adapter.verify(undone)).ok
    assert "IRREVERSIBLE" in (await adapter.capabilities()).detail


async def test_stopped_server_is_a_transient_error(lab):
    adapter = adapter_for(lab)
    await lab.stop()

    with pytest.raises(TransientAdapterError, match="cannot reach"):
        await adapter.apply(deny(), key="inc-1:revoke-vault")


async def test_wrong_root_token_is_permanent_and_not_echoed(lab, tmp_path):
    wrong = tmp_path / "wrong-token"
    wrong.write_text("s.not-the-root-token-77\n")
    good = server(lab)
    bad = VaultServer(system=good.system, url=good.url, token=SecretRef(file=wrong))

    with pytest.raises(PermanentAdapterError) as raised:
        await VaultAdapter({"vault-city": bad}).apply(deny(), key="inc-1:revoke-vault")

    message = str(raised.value)
    assert str(wrong) in message
    assert "not-the-root-token-77" not in message
    assert lab.root_token_file.read_text().strip() not in message
    assert token_works(lab, account_token(lab))


async def test_unknown_account_is_permanent_and_touches_nothing(lab):
    with pytest.raises(PermanentAdapterError, match="no account 'svc-nobody'"):
        await adapter_for(lab).apply(deny("svc-nobody"), key="k")

    assert token_works(lab, account_token(lab))


async def test_bad_targets_and_actions_are_permanent(lab):
    adapter = adapter_for(lab)

    with pytest.raises(PermanentAdapterError, match="no Vault system"):
        await adapter.apply(deny(system="vault-elsewhere"), key="k")
    # A path in the name would widen the lease prefix to other accounts.
    with pytest.raises(PermanentAdapterError, match="plain account name"):
        await adapter.apply(deny("svc-scada/.."), key="k")
    with pytest.raises(PermanentAdapterError, match="supports"):
        await adapter.plan(deny().model_copy(update={"action": "allow"}))
    assert token_works(lab, account_token(lab))


async def test_lab_secrets_are_private_and_stop_leaves_no_process(tmp_path):
    lab = VaultLab(port=free_port(), directory=tmp_path, accounts={"svc-scada": "pw"})
    await lab.start()
    pid = lab.pid
    try:
        for path in (
            lab.root_token_file,
            lab.account_token_file("svc-scada"),
            lab.account_password_file("svc-scada"),
            lab.log_file,
        ):
            assert path.stat().st_mode & 0o777 == 0o600, path
    finally:
        await lab.stop()
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_from_config_refuses_prefixes_that_would_hit_everyone(tmp_path: Path):
    with pytest.raises(ValueError, match=re.escape("lacks the {identity} placeholder")):
        VaultServer.from_config(
            "vault-city", {"token_env": "T", "lease_prefixes": ["pki/issue/"]}, url="http://x"
        )
    with pytest.raises(ValueError, match="unknown placeholder"):
        VaultServer.from_config(
            "vault-city",
            {"token_env": "T", "lease_prefixes": ["{identity}/{role}"]},
            url="http://x",
        )
    with pytest.raises(ValueError, match="lease_prefix"):
        VaultServer.from_config(
            "vault-city", {"token_env": "T", "lease_prefix": []}, url="http://x"
        )


def test_from_config_reads_a_full_inventory_record(tmp_path: Path):
    record = {
        "description": "Secrets store",
        "adapter": "vault",
        "zone": "municipal-it",
        "revocation": {"action": "deny", "reversible": False},
        "endpoint": "https://vault.example:8200/",
        "token_file": "vault-token",
        "auth_mount": "ldap-users",
    }
    server = VaultServer.from_config("vault-city", record, secrets_dir=tmp_path)
    assert server.url == "https://vault.example:8200"
    assert server.token.file == tmp_path / "vault-token"
    assert server.prefixes_for("svc-scada") == ["auth/ldap-users/login/svc-scada/"]
    assert server.probe_password_file is None
