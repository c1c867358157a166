"""OIDC responders: JWTs from a configured issuer, keys from its JWKS (served over real
HTTP on loopback, or read from a file), roles from a claim; everything else is refused
with a 401 that says why. The keys are generated here; no identity provider is needed."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from harness import api_client, make_settings, running_worker, wait_for
from temporalio.client import Client
from workflow_fakes import ScriptedEngine, fallback_step, new_incident, scripted_activities, send

from contracts.incident import IncidentStatus, StepState
from orchestrator.config import DEFAULT_POLICY_DIR
from orchestrator.lab.traffic import TrafficLab
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.responders.oidc import InvalidIdentityToken, OidcVerifier
from orchestrator.responders.principals import PrincipalStore

ISSUER = "https://idp.city.test/realms/ops"
AUDIENCE = "bulkhead"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


SIGNING_KEY = new_key()
OTHER_KEY = new_key()
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def jwk_of(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str, alg: str
) -> dict[str, Any]:
    algorithm = jwt.algorithms.ECAlgorithm if alg.startswith("ES") else jwt.algorithms.RSAAlgorithm
    jwk: dict[str, Any] = json.loads(algorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "use": "sig", "alg": alg})
    return jwk


def jwks(*keys: rsa.RSAPrivateKey) -> str:
    return json.dumps({"keys": [jwk_of(key, f"k{i}", "RS256") for i, key in enumerate(keys)]})


def idp_jwks() -> str:
    """What the IdP publishes: an RSA key k0 and an EC key k1, each with its algorithm."""
    return json.dumps({"keys": [jwk_of(SIGNING_KEY, "k0", "RS256"), jwk_of(EC_KEY, "k1", "ES256")]})


def claims_of(**claims: Any) -> dict[str, Any]:
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "preferred_username": "olivia",
        "iat": now,
        "exp": now + 300,
        "realm_access": {"roles": ["duty-officer", "offline_access"]},
    }
    body.update(claims)
    return {k: v for k, v in body.items() if v is not None}


def token(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = SIGNING_KEY,
    kid: str = "k0",
    alg: str = "RS256",
    **claims: Any,
) -> str:
    return jwt.encode(claims_of(**claims), key, alg, {"kid": kid})


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    document = idp_jwks().encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/certs"
    finally:
        server.shutdown()
        server.server_close()


def verifier(jwks_url: str, **overrides: Any) -> OidcVerifier:
    settings = make_settings(
        1,
        **{
            "oidc_issuer": ISSUER,
            "oidc_audience": AUDIENCE,
            "oidc_jwks_url": jwks_url,
            "oidc_roles_claim": "realm_access.roles",
            **overrides,
        },
    )
    found = OidcVerifier.from_settings(settings)
    assert found is not None
    return found


def test_valid_token_yields_the_user_and_only_known_roles(jwks_url):
    principal = verifier(jwks_url).verify(token())
    assert principal.id == f"oidc:{ISSUER}#user-1"
    assert principal.name == "olivia"
    assert principal.roles == ["duty-officer"]


def test_an_ec_key_verifies_its_own_es256_tokens(jwks_url):
    principal = verifier(jwks_url).verify(token(EC_KEY, kid="k1", alg="ES256"))
    assert principal.id == f"oidc:{ISSUER}#user-1"


def test_the_id_is_the_subject_whatever_name_the_token_shows(jwks_url):
    """The probe's case: one subject, with and without preferred_username."""
    check = verifier(jwks_url)
    named = check.verify(token(preferred_username="olivia"))
    unnamed = check.verify(token(preferred_username=None))
    assert named.id == unnamed.id == f"oidc:{ISSUER}#user-1"
    assert (named.name, unnamed.name) == ("olivia", "user-1")
    other = check.verify(token(sub="user-2", preferred_username="olivia"))
    assert other.name == "olivia" and other.id != named.id


@pytest.mark.parametrize(
    ("name_claim", "shown"),
    [
        (None, "user-1"),
        ("", "user-1"),
        ("   ", "user-1"),
        ("Olivia Lopez", "Olivia Lopez"),
        ("o" * 600, "o" * 128),
    ],
    ids=["absent", "empty", "blank", "a-name", "long-truncated"],
)
def test_display_name_is_the_name_claim_else_the_subject_cut_to_128(jwks_url, name_claim, shown):
    assert verifier(jwks_url).verify(token(preferred_username=name_claim)).name == shown


def test_an_idp_user_is_never_the_local_principal_of_the_same_name(jwks_url, tmp_path):
    store = PrincipalStore(tmp_path / "principals.json")
    local = store.authenticate(store.add("duty1", ["duty-officer"]))
    remote = verifier(jwks_url).verify(token(sub="duty1", preferred_username="duty1"))
    assert local is not None and local.name == remote.name == "duty1"
    assert (local.id, remote.id) == ("local:duty1", f"oidc:{ISSUER}#duty1")


@pytest.mark.parametrize(
    ("claims", "key", "why"),
    [
        ({"exp": int(time.time()) - 3600}, SIGNING_KEY, "expired"),
        ({"iss": "https://evil.test"}, SIGNING_KEY, "issuer"),
        ({"aud": "someone-else"}, SIGNING_KEY, "audience"),
        ({"exp": None}, SIGNING_KEY, "exp"),
        ({}, OTHER_KEY, "signature"),
    ],
)
def test_bad_tokens_are_refused_with_the_reason(jwks_url, claims, key, why):
    with pytest.raises(InvalidIdentityToken, match=f"(?i){why}"):
        verifier(jwks_url).verify(token(key, **claims))


def test_unsigned_and_unknown_key_tokens_are_refused(jwks_url):
    unsigned = jwt.encode({"iss": ISSUER, "sub": "x", "exp": 9999999999}, None, "none")
    with pytest.raises(InvalidIdentityToken):
        verifier(jwks_url).verify(unsigned)
    with pytest.raises(InvalidIdentityToken, match="rotated-away"):
        verifier(jwks_url).verify(token(OTHER_KEY, kid="rotated-away"))


def test_an_issuer_without_an_audience_refuses_to_start(jwks_url):
    with pytest.raises(ValueError, match="oidc_audience") as refused:
        verifier(jwks_url, oidc_audience=None)
    assert "oidc_allow_any_audience" in str(refused.value)


def test_any_audience_only_when_asked_and_a_set_audience_is_still_checked(jwks_url):
    anyone = verifier(jwks_url, oidc_audience=None, oidc_allow_any_audience=True)
    assert anyone.verify(token(aud="another-app")).id == f"oidc:{ISSUER}#user-1"
    assert anyone.verify(token(aud=None)).name == "olivia"
    both = verifier(jwks_url, oidc_allow_any_audience=True)
    with pytest.raises(InvalidIdentityToken, match=r"(?i)audience"):
        both.verify(token(aud="another-app"))


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"oidc_algorithms": ["RS256", "HS256"]}, "oidc_algorithms"),
        ({"oidc_algorithms": ["none"]}, "oidc_algorithms"),
        ({"oidc_algorithms": []}, "oidc_algorithms"),
        ({"oidc_issuer": "https://idp.city.test/realms/ops#x"}, "oidc_issuer"),
    ],
    ids=["shared-secret-algorithm", "alg-none", "no-algorithm", "issuer-with-fragment"],
)
def test_settings_that_would_accept_forgeable_or_ambiguous_tokens_refuse_to_start(
    jwks_url, overrides, named
):
    with pytest.raises(ValueError, match=named):
        verifier(jwks_url, **overrides)


def test_keys_from_a_file_work_offline(tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(jwks(OTHER_KEY, SIGNING_KEY))
    settings = make_settings(
        1,
        oidc_issuer=ISSUER,
        oidc_allow_any_audience=True,
        oidc_jwks_file=path,
        oidc_roles_claim="roles",
    )
    found = OidcVerifier.from_settings(settings)
    assert found is not None
    principal = found.verify(token(kid="k1", roles="responder viewer", aud=None))
    assert principal.roles == ["responder", "viewer"]


async def test_oidc_responders_approve_through_the_real_policy(
    temporal_client: Client, traffic_lab: TrafficLab, jwks_url
):
    """An OIDC viewer is refused by Rego; one subject approving again under another display
    name is refused too; a responder and a duty officer complete four-eyes."""
    settings = make_settings(
        traffic_lab.port,
        oidc_issuer=ISSUER,
        oidc_audience=AUDIENCE,
        oidc_jwks_url=jwks_url,
        oidc_roles_claim="realm_access.roles",
    )
    gate = {"required": 2, "must_include_roles": ["duty-officer"], "timeout_s": 600}
    engine = ScriptedEngine([fallback_step("tsc-0001", approval=gate)])
    activities = scripted_activities(settings, engine)
    params = new_incident()
    path = f"/v1/incidents/{params.incident_id}/steps/fallback:tsc-0001/approve"

    def bearer(sub: str, name: str | None, *roles: str) -> dict[str, str]:
        jwt_ = token(sub=sub, preferred_username=name, realm_access={"roles": list(roles)})
        return {"Authorization": f"Bearer {jwt_}"}

    async with (
        running_worker(temporal_client, settings, activities),
        api_client(
            temporal_client, settings, activities, EmbeddedEngine(DEFAULT_POLICY_DIR)
        ) as http,
    ):
        await send(temporal_client, settings, params)
        await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: v.status is IncidentStatus.AWAITING_APPROVAL,
        )
        viewer = await http.post(
            path, json={"reason": "x"}, headers=bearer("u-val", "val", "viewer")
        )
        forged = await http.post(
            path,
            json={"reason": "x"},
            headers={"Authorization": f"Bearer {token(OTHER_KEY)}"},
        )
        first = await http.post(
            path, json={"reason": "seen"}, headers=bearer("u-ria", "ria", "responder")
        )
        # The same subject as a duty officer, its token without preferred_username.
        again = await http.post(
            path, json={"reason": "me again"}, headers=bearer("u-ria", None, "duty-officer")
        )
        second = await http.post(
            path, json={"reason": "ok"}, headers=bearer("u-olivia", "olivia", "duty-officer")
        )
        view = await wait_for(
            temporal_client, params.incident_id, lambda v: v.steps[0].state is StepState.VERIFIED
        )
    assert viewer.status_code == 403
    assert forged.status_code == 401
    assert "signature" in forged.json()["detail"].lower()
    assert again.status_code == 403, again.text
    assert "already approved" in again.json()["detail"]
    assert first.status_code == second.status_code == 200
    assert [(a.principal, a.principal_id) for a in view.steps[0].approvals] == [
        ("ria", f"oidc:{ISSUER}#u-ria"),
        ("olivia", f"oidc:{ISSUER}#u-olivia"),
    ]
