"""The LDAP identity adapter against a real slapd (Debian OpenLDAP 2.5) on loopback.

Every test gets a fresh directory (slapadd + slapd start in well under a second), and
checks the server with its own ldap3 connections: a bind as the account itself, or an
admin read of the entry, never the adapter's word alone.
"""

from __future__ import annotations

import os
import signal
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port

from adapters.base import PermanentAdapterError, TransientAdapterError
from adapters.identity.ldap import PERMANENT_LOCK, LdapAdapter, LdapDirectory
from adapters.secrets import SecretRef
from contracts.adapter import Receipt, StepCommand
from orchestrator.lab.ldap import SlapdLab, unavailable

with warnings.catch_warnings():
    # ldap3 2.9.1 imports names pyasn1 0.6.1 deprecates; see adapters/identity/ldap3_quiet.py.
    warnings.filterwarnings("ignore", r"(tagMap|typeMap) is deprecated", DeprecationWarning)
    import ldap3

NO_SLAPD = unavailable()
needs_slapd = pytest.mark.skipif(NO_SLAPD is not None, reason=str(NO_SLAPD))

SYSTEM = "ldap-city"


# --- fixtures and independent views of the server ------------------------------------------


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[SlapdLab]:
    if NO_SLAPD is not None:
        pytest.skip(NO_SLAPD)
    async with SlapdLab(tmp_path / "lab", port=free_port()) as running:
        yield running


def directory_for(lab: SlapdLab, strategy: str = "lock", **overrides: Any) -> LdapDirectory:
    record = {**lab.inventory_record(strategy), "timeout_s": 2, **overrides}
    return LdapDirectory.from_config(SYSTEM, record, url=lab.url, secrets_dir=lab.secrets_dir)


def adapter_for(lab: SlapdLab, strategy: str = "lock", **overrides: Any) -> LdapAdapter:
    return LdapAdapter({SYSTEM: directory_for(lab, strategy, **overrides)})


def deny(identity: str = "svc-scada", system: str = SYSTEM, action: str = "deny") -> StepCommand:
    return StepCommand(
        incident_id="inc-1",
        step_id="revoke-ldap",
        adapter="ldap",
        action=action,
        target={"identity": identity, "system": system},
    )


def connect(lab: SlapdLab, dn: str, password: str) -> Any:
    return ldap3.Connection(
        ldap3.Server(lab.url, get_info=ldap3.NONE, connect_timeout=2),
        user=dn,
        password=password,
        receive_timeout=2,
    )


def bind_works(lab: SlapdLab, uid: str, dn: str | None = None) -> bool:
    """A bind as the account with its own password, as the SCADA integration would do."""
    password = lab.account_password_file(uid).read_text().strip()
    connection = connect(lab, dn or lab.account_dn(uid), password)
    try:
        return bool(connection.bind())
    finally:
        connection.unbind()


def admin_read(lab: SlapdLab, dn: str, attributes: list[str]) -> dict[str, Any] | None:
    connection = connect(lab, lab.admin_dn, lab.admin_password_file.read_text().strip())
    try:
        assert connection.bind()
        connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=attributes)
        return dict(connection.response[0]["attributes"]) if connection.entries else None
    finally:
        connection.unbind()


def admin_modify(lab: SlapdLab, dn: str, changes: dict[str, Any]) -> None:
    connection = connect(lab, lab.admin_dn, lab.admin_password_file.read_text().strip())
    try:
        assert connection.bind()
        assert connection.modify(dn, changes), connection.result
    finally:
        connection.unbind()


def lock_of(lab: SlapdLab, uid: str) -> list[str]:
    entry = admin_read(lab, lab.account_dn(uid), ["pwdAccountLockedTime"])
    assert entry is not None
    return [str(value) for value in entry.get("pwdAccountLockedTime") or []]


def change_stamp(lab: SlapdLab, dn: str) -> str:
    """entryCSN changes on every write to the entry: proof that nothing was written."""
    entry = admin_read(lab, dn, ["entryCSN"])
    assert entry is not None
    return str(entry["entryCSN"][0])


def groups_of(lab: SlapdLab, dn: str) -> list[str]:
    connection = connect(lab, lab.admin_dn, lab.admin_password_file.read_text().strip())
    try:
        assert connection.bind()
        connection.search(lab.base_dn, f"(|(member={dn})(uniqueMember={dn}))", attributes=["cn"])
        return sorted(str(entry.entry_dn) for entry in connection.entries)
    finally:
        connection.unbind()


# --- the lab itself -------------------------------------------------------------------------


async def test_lab_writes_private_credentials_that_bind(lab: SlapdLab):
    assert bind_works(lab, "svc-scada")
    for path in (lab.admin_password_file, lab.account_password_file("svc-scada")):
        assert path.stat().st_mode & 0o777 == 0o600
    assert groups_of(lab, lab.account_dn("svc-scada")) == [lab.group_dn("scada-operators")]


@needs_slapd
async def test_lab_stop_leaves_no_slapd_behind(tmp_path: Path):
    lab = SlapdLab(tmp_path / "lab", port=free_port())
    await lab.start()
    pid = int(lab.pid_file.read_text())
    await lab.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped and reaped, not a zombie


async def test_lab_start_failure_reports_slapd_output(tmp_path: Path, lab: SlapdLab):
    clash = SlapdLab(tmp_path / "clash", port=lab.port, start_timeout_s=3)
    with pytest.raises(RuntimeError, match="slapd exited") as failure:
        await clash.start()
    assert "bind" in str(failure.value).lower()
    assert not clash.running


# --- lock: ppolicy's pwdAccountLockedTime ---------------------------------------------------


async def test_lock_blocks_the_bind_and_rollback_restores_it(lab: SlapdLab):
    adapter = adapter_for(lab)
    receipt = await adapter.apply(deny(), key="inc-1:revoke-ldap")

    assert lock_of(lab, "svc-scada") == [PERMANENT_LOCK]
    assert not bind_works(lab, "svc-scada")
    assert bind_works(lab, "svc-signals")  # the other accounts keep working
    check = await adapter.verify(receipt)
    assert check.ok, check.detail
    assert check.observed["locked_time"] == PERMANENT_LOCK
    assert check.observed["bind"] == "rejected"

    undone = await adapter.rollback(receipt)
    assert lock_of(lab, "svc-scada") == []
    assert bind_works(lab, "svc-scada")
    restored = await adapter.verify(undone)
    assert restored.ok, restored.detail
    assert restored.observed["bind"] == "accepted"


async def test_plan_reads_the_account_without_writing(lab: SlapdLab):
    dn = lab.account_dn("svc-scada")
    stamp = change_stamp(lab, dn)
    plan = await adapter_for(lab).plan(deny())
    assert plan.before == {"strategy": "lock", "dn": dn, "locked_time": None, "disabled": False}
    assert plan.after["locked_time"] == PERMANENT_LOCK
    assert plan.changes == [f"set pwdAccountLockedTime of {dn} to {PERMANENT_LOCK}"]
    assert change_stamp(lab, dn) == stamp
    assert bind_works(lab, "svc-scada")


async def test_apply_twice_writes_once(lab: SlapdLab):
    adapter, dn = adapter_for(lab), lab.account_dn("svc-scada")
    await adapter.apply(deny(), key="inc-1:revoke-ldap")
    stamp = change_stamp(lab, dn)
    again = await adapter.apply(deny(), key="inc-1:revoke-ldap")
    assert again.detail == "already disabled, nothing changed"
    assert change_stamp(lab, dn) == stamp


async def test_rollback_twice_and_rollback_of_nothing_write_nothing(lab: SlapdLab):
    adapter, dn = adapter_for(lab), lab.account_dn("svc-scada")
    receipt = await adapter.apply(deny(), key="inc-1:revoke-ldap")
    await adapter.rollback(receipt)
    stamp = change_stamp(lab, dn)
    second = await adapter.rollback(receipt)
    assert second.detail == "already in its prior state, nothing changed"
    third = await adapter.rollback(second)
    assert third.detail == "nothing to undo"
    assert change_stamp(lab, dn) == stamp
    assert bind_works(lab, "svc-scada")


async def test_rollback_from_the_plan_keeps_a_lock_that_was_there_before(lab: SlapdLab):
    """The workflow restores `plan.before`: an account locked before the step stays locked."""
    adapter = adapter_for(lab)
    admin_modify(
        lab,
        lab.account_dn("svc-scada"),
        {"pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE, [PERMANENT_LOCK])]},
    )
    plan = await adapter.plan(deny())
    receipt = await adapter.apply(deny(), key="inc-1:revoke-ldap")
    undone = await adapter.rollback(receipt.model_copy(update={"before": plan.before}))
    assert lock_of(lab, "svc-scada") == [PERMANENT_LOCK]
    assert (await adapter.verify(undone)).ok
    assert not bind_works(lab, "svc-scada")


async def test_verify_fails_when_the_directory_was_changed_behind_its_back(lab: SlapdLab):
    adapter = adapter_for(lab)
    receipt = await adapter.apply(deny(), key="inc-1:revoke-ldap")
    admin_modify(
        lab, lab.account_dn("svc-scada"), {"pwdAccountLockedTime": [(ldap3.MODIFY_DELETE, [])]}
    )
    check = await adapter.verify(receipt)
    assert not check.ok
    assert check.observed["bind"] == "accepted"
    assert "was accepted" in check.detail


async def test_verify_without_probe_credential_still_reads_the_lock(lab: SlapdLab):
    record = lab.inventory_record()
    del record["probe_password_file"]
    adapter = LdapAdapter(
        {
            SYSTEM: LdapDirectory.from_config(
                SYSTEM, record, url=lab.url, secrets_dir=lab.secrets_dir
            )
        }
    )
    check = await adapter.verify(await adapter.apply(deny(), key="k"))
    assert check.ok
    assert check.observed["bind"].startswith("not checked")


# --- groups: membership in groupOfNames and groupOfUniqueNames ------------------------------


async def test_groups_strategy_removes_and_restores_every_membership(lab: SlapdLab):
    dn = lab.account_dn("svc-scada")
    uploaders = f"cn=signal-uploaders,{lab.groups_dn}"
    connection = connect(lab, lab.admin_dn, lab.admin_password_file.read_text().strip())
    try:
        assert connection.bind()
        assert connection.add(
            uploaders, ["groupOfUniqueNames"], {"cn": "signal-uploaders", "uniqueMember": [dn]}
        )
    finally:
        connection.unbind()
    adapter = adapter_for(lab, "groups")

    receipt = await adapter.apply(deny(), key="inc-1:revoke-ldap")
    assert receipt.before["groups"] == sorted([lab.group_dn("scada-operators"), uploaders])
    assert groups_of(lab, dn) == []
    assert groups_of(lab, lab.account_dn("svc-signals")) == [lab.group_dn("scada-operators")]
    check = await adapter.verify(receipt)
    assert check.ok, check.detail
    assert check.observed["groups"] == []

    undone = await adapter.rollback(receipt)
    assert groups_of(lab, dn) == sorted([lab.group_dn("scada-operators"), uploaders])
    assert (await adapter.verify(undone)).ok
    again = await adapter.apply(deny(), key="inc-2:revoke-ldap")
    assert again.detail.count("remove") == 2


async def test_groups_strategy_empties_a_group_without_breaking_it(lab: SlapdLab):
    """groupOfNames needs a member: the last one is swapped for an empty placeholder."""
    group, dn = lab.group_dn("permits-app"), lab.account_dn("svc-permits")
    adapter = adapter_for(lab, "groups")
    receipt = await adapter.apply(deny("svc-permits"), key="inc-1:revoke-ldap")
    members = admin_read(lab, group, ["member"])
    assert members is not None
    assert members["member"] == [""]
    assert (await adapter.verify(receipt)).ok

    await adapter.rollback(receipt)
    members = admin_read(lab, group, ["member"])
    assert members is not None
    assert members["member"] == [dn]


async def test_rollback_restores_what_it_can_when_a_group_was_deleted(lab: SlapdLab):
    dn, operators = lab.account_dn("svc-scada"), lab.group_dn("scada-operators")
    second = f"cn=historians,{lab.groups_dn}"
    connection = connect(lab, lab.admin_dn, lab.admin_password_file.read_text().strip())
    try:
        assert connection.bind()
        assert connection.add(second, ["groupOfNames"], {"cn": "historians", "member": [dn]})
        adapter = adapter_for(lab, "groups")
        receipt = await adapter.apply(deny(), key="inc-1:revoke-ldap")
        assert connection.delete(operators)
    finally:
        connection.unbind()
    with pytest.raises(PermanentAdapterError, match=f"group {operators} no longer exists"):
        await adapter.rollback(receipt)
    assert groups_of(lab, dn) == [second]


async def test_groups_default_to_searching_the_whole_naming_context(lab: SlapdLab):
    adapter = adapter_for(lab, "groups", groups_base=None)
    plan = await adapter.plan(deny())
    assert plan.before["groups"] == [lab.group_dn("scada-operators")]


# --- move: rename into ou=disabled ----------------------------------------------------------


async def test_move_strategy_moves_the_entry_away_and_back(lab: SlapdLab):
    adapter, dn = adapter_for(lab, "move"), lab.account_dn("svc-scada")
    moved = f"uid=svc-scada,{lab.disabled_dn}"
    receipt = await adapter.apply(deny(), key="inc-1:revoke-ldap")
    assert admin_read(lab, dn, ["uid"]) is None
    assert admin_read(lab, moved, ["uid"]) is not None
    assert not bind_works(lab, "svc-scada")
    check = await adapter.verify(receipt)
    assert check.ok, check.detail
    assert check.observed["bind"] == "rejected"
    assert (await adapter.apply(deny(), key="inc-1:revoke-ldap")).detail.startswith("already")

    undone = await adapter.rollback(receipt)
    assert admin_read(lab, dn, ["uid"]) is not None
    assert bind_works(lab, "svc-scada")
    assert (await adapter.verify(undone)).ok


# --- failures -------------------------------------------------------------------------------


async def test_stopped_server_is_a_transient_error(lab: SlapdLab):
    adapter = adapter_for(lab)
    await lab.stop()
    with pytest.raises(TransientAdapterError, match="did not answer"):
        await adapter.apply(deny(), key="inc-1:revoke-ldap")


async def test_hung_server_times_out_as_a_transient_error(lab: SlapdLab):
    adapter = adapter_for(lab, timeout_s=0.5)
    pid = int(lab.pid_file.read_text())
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(TransientAdapterError):
            await adapter.plan(deny())
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_wrong_admin_password_is_permanent_and_never_shown(lab: SlapdLab, tmp_path: Path):
    wrong = tmp_path / "wrong-admin"
    wrong.write_text("not-the-password-9f3a\n")
    adapter = adapter_for(lab, password_file=str(wrong))
    with pytest.raises(PermanentAdapterError) as failure:
        await adapter.plan(deny())
    message = str(failure.value)
    assert lab.admin_dn in message
    assert str(wrong) in message
    assert "not-the-password-9f3a" not in message


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (deny(system="ldap-elsewhere"), "no LDAP directory 'ldap-elsewhere'"),
        (deny(identity="svc-nobody"), "has no entry uid=svc-nobody,ou=services"),
        (deny(identity="svc,scada=x"), "is not an account name"),
        (deny(action="allow"), "supports ('deny',)"),
    ],
)
async def test_unknown_targets_are_permanent_errors(lab: SlapdLab, command, message):
    with pytest.raises(
        PermanentAdapterError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        await adapter_for(lab).apply(command, key="inc-1:revoke-ldap")


async def test_verify_of_an_empty_receipt_is_refused(lab: SlapdLab):
    receipt = Receipt(adapter="ldap", key="k", target=deny().target, action="deny", applied=False)
    with pytest.raises(PermanentAdapterError, match="no state"):
        await adapter_for(lab).verify(receipt)


# --- configuration --------------------------------------------------------------------------


def test_from_config_reads_the_lab_record(tmp_path: Path):
    lab = SlapdLab(tmp_path, port=1389)
    directory = directory_for(lab)
    assert directory.url == "ldap://127.0.0.1:1389"
    assert directory.password == SecretRef(file=tmp_path / "secrets" / "ldap-admin")
    assert directory.dn_of("svc-scada") == "uid=svc-scada,ou=services,dc=city,dc=example"
    probe = directory.probe_secret("svc-scada")
    assert probe is not None
    assert probe.file == tmp_path / "secrets" / "identities" / "svc-scada"
    assert "ldap-admin" in repr(directory)  # where the secret is, never its value


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"strategy": "delete"}, "strategy"),
        ({"endpoint": None}, "endpoint"),
        ({"endpoint": "http://ldap"}, "url"),
        ({"account_dn": "uid={user},ou=services"}, "account_dn"),
        ({"password_file": None}, "password_file"),
        ({"password": "hunter2"}, "password"),
        ({"timeout_s": "soon"}, "timeout_s"),
        ({"probe_password_file": "identities/{0}"}, "probe_password"),
        ({"strategy": "move", "disabled_ou": None}, "disabled_ou"),
    ],
)
def test_from_config_names_the_bad_key(tmp_path: Path, change: dict, key: str):
    record = {**SlapdLab(tmp_path).inventory_record(), **change}
    record = {name: value for name, value in record.items() if value is not None}
    with pytest.raises(ValueError, match=key):
        LdapDirectory.from_config(SYSTEM, record, url="ldap://127.0.0.1:1389")


def test_lab_endpoint_needs_the_lab_url(tmp_path: Path):
    with pytest.raises(ValueError, match="endpoint"):
        LdapDirectory.from_config(SYSTEM, SlapdLab(tmp_path).inventory_record())


async def test_capabilities_list_the_directories(tmp_path: Path):
    capabilities = await adapter_for(SlapdLab(tmp_path), "groups").capabilities()
    assert capabilities.usable
    assert capabilities.actions == ["deny"]
    assert "ldap-city (groups)" in capabilities.detail
    assert not (await LdapAdapter({}).capabilities()).usable
