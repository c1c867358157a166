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
from cryptography.hazmat.primitives.asymmetric import rsa
from harness import api_client, make_settings, running_worker, wait_for
from temporalio.client import Client
from workflow_fakes import ScriptedEngine, fallback_step, new_incident, scripted_activities, send

from orchestrator.config import DEFAULT_POLICY_DIR
from orchestrator.lab.traffic import TrafficLab
from orchestrator.oidc import InvalidIdentityToken, OidcVerifier
from orchestrator.policy.embedded import EmbeddedEngine
from workflows.state import IncidentStatus, StepState

ISSUER = "https://idp.city.test/realms/ops"
AUDIENCE = "bulkhead"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


SIGNING_KEY = new_key()
OTHER_KEY = new_key()


def jwks(*keys: rsa.RSAPrivateKey) -> str:
    listed = []
    for index, key in enumerate(keys):
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        jwk.update({"kid": f"k{index}", "use": "sig", "alg": "RS256"})
        listed.append(jwk)
    return json.dumps({"keys": listed})


def token(key: rsa.RSAPrivateKey = SIGNING_KEY, kid: str = "k0", **claims: Any) -> str:
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
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, "RS256", {"kid": kid})


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    document = jwks(SIGNING_KEY).encode()

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


def verifier(jwks_url: str) -> OidcVerifier:
    settings = make_settings(
        1,
        oidc_issuer=ISSUER,
        oidc_audience=AUDIENCE,
        oidc_jwks_url=jwks_url,
        oidc_roles_claim="realm_access.roles",
    )
    found = OidcVerifier.from_settings(settings)
    assert found is not None
    return found


def test_valid_token_yields_the_user_and_only_known_roles(jwks_url):
    principal = verifier(jwks_url).verify(token())
    assert principal.name == "olivia"
    assert principal.roles == ["duty-officer"]


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


def test_keys_from_a_file_work_offline(tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(jwks(OTHER_KEY, SIGNING_KEY))
    settings = make_settings(1, oidc_issuer=ISSUER, oidc_jwks_file=path, oidc_roles_claim="roles")
    found = OidcVerifier.from_settings(settings)
    assert found is not None
    principal = found.verify(token(kid="k1", roles="responder viewer", aud=None))
    assert principal.roles == ["responder", "viewer"]


async def test_oidc_responders_approve_through_the_real_policy(
    temporal_client: Client, traffic_lab: TrafficLab, jwks_url
):
    """An OIDC viewer is refused by Rego; a responder and a duty officer complete four-eyes."""
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

    def bearer(name: str, *roles: str) -> dict[str, str]:
        jwt_ = token(preferred_username=name, realm_access={"roles": list(roles)})
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
        viewer = await http.post(path, json={"reason": "x"}, headers=bearer("val", "viewer"))
        forged = await http.post(
            path,
            json={"reason": "x"},
            headers={"Authorization": f"Bearer {token(OTHER_KEY)}"},
        )
        first = await http.post(path, json={"reason": "seen"}, headers=bearer("ria", "responder"))
        second = await http.post(
            path, json={"reason": "ok"}, headers=bearer("olivia", "duty-officer")
        )
        view = await wait_for(
            temporal_client, params.incident_id, lambda v: v.steps[0].state is StepState.VERIFIED
        )
    assert viewer.status_code == 403
    assert forged.status_code == 401
    assert "signature" in forged.json()["detail"].lower()
    assert first.status_code == second.status_code == 200
    assert [a.principal for a in view.steps[0].approvals] == ["ria", "olivia"]
