"""Issue #6, done when: a finding that implicates the shared service account svc-scada
is approved step by step, and then, on the real servers, the account can no longer
authenticate anywhere; release restores the LDAP and SCIM accounts and reports the
Vault revocation as irreversible.

Real servers on 127.0.0.1: Debian's slapd, scim2-server, an OpenBao dev server; the real
policy (embedded regorus), the real worker and API on the real Temporal dev server.
"""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import hvac
import hvac.exceptions
import pytest
from conftest import free_port
from harness import api_client, fresh_ip, make_settings, running_worker, signed, wait_for
from temporalio.client import Client

from contracts.incident import IncidentStatus, StepState
from orchestrator.lab import ldap as ldap_lab
from orchestrator.lab.identity import IdentityLab
from orchestrator.responders.principals import PrincipalStore
from orchestrator.wiring.worker import build_activities

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # pyasn1, imported by ldap3
    import ldap3

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(ldap_lab.unavailable() is not None, reason=str(ldap_lab.unavailable())),
]
SYSTEMS = ("ldap-city", "scim-idp", "vault-city")


def scada_logon() -> dict[str, Any]:
    """svc-scada logging on from an unknown host, with a host and a finding uid of its own:
    the incident is keyed on the host, and an incident (released, resting) outlives its
    test on the shared dev server, on that test's task queue."""
    unknown_host = fresh_ip()
    return {
        "class_uid": 2004,
        "finding_info": {
            "uid": f"det-svc-scada-{uuid.uuid4().hex[:8]}",
            "title": "svc-scada logon from unknown host",
        },
        "severity_id": 4,
        "confidence_id": 3,
        "time": 1796227200000,
        "evidences": [{"src_endpoint": {"ip": unknown_host}, "user": {"name": "svc-scada"}}],
        "metadata": {"product": {"name": "Lab ICS Monitor", "vendor_name": "Bulkhead Lab"}},
    }


@asynccontextmanager
async def identity_servers() -> AsyncIterator[IdentityLab]:
    """slapd, SCIM and OpenBao on private ports, seeded with the inventory's accounts."""
    settings = make_settings(
        free_port(),
        lab_ldap_port=free_port(),
        lab_scim_port=free_port(),
        lab_vault_port=free_port(),
    )
    servers = IdentityLab.from_inventory(settings)
    await servers.start()
    try:
        yield servers
    finally:
        await servers.stop()


@pytest.fixture
async def lab() -> AsyncIterator[IdentityLab]:
    async with identity_servers() as servers:
        yield servers


def secret(lab: IdentityLab, name: str) -> str:
    return (lab.settings.lab_secrets_dir / name).read_text().strip()


def ldap_bind_works(lab: IdentityLab) -> bool:
    assert lab.slapd is not None
    server = ldap3.Server(lab.slapd.url, connect_timeout=5)
    password = secret(lab, "identities/svc-scada")
    connection = ldap3.Connection(server, lab.slapd.account_dn("svc-scada"), password)
    try:
        return bool(connection.bind())
    finally:
        connection.unbind()


def vault_token_works(lab: IdentityLab) -> bool:
    assert lab.vault is not None
    client = hvac.Client(url=lab.vault.url, token=secret(lab, "identities/svc-scada.vault-token"))
    try:
        client.auth.token.lookup_self()
    except hvac.exceptions.Forbidden:
        return False
    finally:
        client.adapter.close()
    return True


def vault_login_works(lab: IdentityLab) -> bool:
    assert lab.vault is not None
    client = hvac.Client(url=lab.vault.url)
    try:
        client.auth.userpass.login("svc-scada", secret(lab, "identities/svc-scada.vault-password"))
    except (hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden):
        return False
    finally:
        client.adapter.close()
    return True


async def scim_active(lab: IdentityLab) -> bool:
    assert lab.scim is not None
    return bool((await lab.scim.read_user("svc-scada"))["active"])


async def test_shared_account_is_revoked_everywhere_and_release_restores_what_it_can(
    temporal_client: Client, lab: IdentityLab
):
    settings = lab.settings
    assert ldap_bind_works(lab) and vault_token_works(lab) and await scim_active(lab)
    store = PrincipalStore(settings.principals_path)
    alice = {"Authorization": f"Bearer {store.add('alice', ['responder'])}"}
    dora = {"Authorization": f"Bearer {store.add('dora', ['duty-officer'])}"}
    activities = build_activities(settings)
    secret_key = settings.webhook_secret.get_secret_value()
    async with (
        running_worker(temporal_client, settings, activities),
        api_client(temporal_client, settings, activities) as http,
    ):
        body = json.dumps(scada_logon()).encode()
        posted = await http.post(
            "/v1/webhooks/generic", content=body, headers=signed(body, secret_key)
        )
        assert posted.status_code == 202, posted.text
        incident_id = posted.json()["findings"][0]["incident_id"]
        waiting = await wait_for(
            temporal_client,
            incident_id,
            lambda v: (
                len(v.steps) == 3 and all(s.state is StepState.AWAITING_APPROVAL for s in v.steps)
            ),
        )
        assert {s.id for s in waiting.steps} == {f"revoke:svc-scada@{s}" for s in SYSTEMS}
        # Nothing is revoked before a person approves: the account still works.
        assert ldap_bind_works(lab) and vault_token_works(lab)
        for step in waiting.steps:
            base = f"/v1/incidents/{incident_id}/steps/{step.id}/approve"
            for who in (alice, dora):
                answer = await http.post(base, json={"reason": "svc-scada abused"}, headers=who)
                assert answer.status_code == 200, answer.text
        contained = await wait_for(
            temporal_client,
            incident_id,
            lambda v: all(s.state is StepState.VERIFIED for s in v.steps),
            timeout_s=60,
        )
        # Proven on the real servers, not on the adapters' word.
        assert not ldap_bind_works(lab), "LDAP still accepts svc-scada"
        assert not await scim_active(lab), "SCIM still shows svc-scada active"
        assert not vault_token_works(lab), "Vault still accepts svc-scada's token"
        assert not vault_login_works(lab), "Vault still lets svc-scada log in"
        released = await http.post(
            f"/v1/incidents/{incident_id}/release",
            json={"reason": "credentials rotated"},
            headers=dora,
        )
        assert released.status_code == 200, released.text
        view = await wait_for(
            temporal_client, incident_id, lambda v: v.status is IncidentStatus.RELEASED
        )
        assert ldap_bind_works(lab), "release did not restore the LDAP account"
        assert await scim_active(lab), "release did not restore the SCIM account"
        assert not vault_token_works(lab), "a Vault revocation cannot come back"
    states = {s.id: s.state for s in view.steps}
    assert states["revoke:svc-scada@ldap-city"] is StepState.ROLLED_BACK
    assert states["revoke:svc-scada@scim-idp"] is StepState.ROLLED_BACK
    assert states["revoke:svc-scada@vault-city"] is StepState.VERIFIED
    irreversible = [e for e in view.audit if e.kind == "release.irreversible"]
    assert [e.detail["step"] for e in irreversible] == ["revoke:svc-scada@vault-city"]
    assert {s.id for s in contained.steps if not s.reversible} == {"revoke:svc-scada@vault-city"}


async def test_a_holder_that_is_down_fails_alone_and_the_others_still_revoke(
    temporal_client: Client, lab: IdentityLab
):
    """Partial failure is reported per system: Vault is down, LDAP and SCIM still revoke."""
    settings = lab.settings
    assert lab.vault is not None
    await lab.vault.stop()
    store = PrincipalStore(settings.principals_path)
    people = [
        {"Authorization": f"Bearer {store.add('alice', ['responder'])}"},
        {"Authorization": f"Bearer {store.add('dora', ['duty-officer'])}"},
    ]
    activities = build_activities(settings)
    key = settings.webhook_secret.get_secret_value()
    async with (
        running_worker(temporal_client, settings, activities),
        api_client(temporal_client, settings, activities) as http,
    ):
        body = json.dumps(scada_logon()).encode()
        posted = await http.post("/v1/webhooks/generic", content=body, headers=signed(body, key))
        incident_id = posted.json()["findings"][0]["incident_id"]
        await wait_for(temporal_client, incident_id, lambda v: len(v.steps) == 3)
        for system in SYSTEMS:
            path = f"/v1/incidents/{incident_id}/steps/revoke:svc-scada@{system}/approve"
            for who in people:
                assert (await http.post(path, json={"reason": "x"}, headers=who)).is_success
        view = await wait_for(
            temporal_client,
            incident_id,
            lambda v: all(s.state in (StepState.VERIFIED, StepState.FAILED) for s in v.steps),
            timeout_s=90,
        )
        assert not ldap_bind_works(lab)
        assert not await scim_active(lab)
    states = {s.id: s.state for s in view.steps}
    assert states == {
        "revoke:svc-scada@ldap-city": StepState.VERIFIED,
        "revoke:svc-scada@scim-idp": StepState.VERIFIED,
        "revoke:svc-scada@vault-city": StepState.FAILED,
    }
    assert view.status is IncidentStatus.FAILED and view.escalated
    assert any("vault-city" in e for e in view.escalations)
