"""Hostile and broken JWTs: whatever their shape, `verify` raises InvalidIdentityToken and
the API answers 401 problem+json with a Bearer challenge, never a 500.

Each case names what is wrong; the keys are the IdP's published RSA key `k0` and EC key
`k1` (tests/orchestrator/test_oidc.py), served over HTTP and read from a file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from fastapi import FastAPI
from harness import make_settings
from temporalio.client import Client

from orchestrator.api.app import create_app
from orchestrator.api.context import build_context
from orchestrator.responders.oidc import InvalidIdentityToken, OidcVerifier

from .test_oidc import (
    AUDIENCE,
    EC_KEY,
    ISSUER,
    SIGNING_KEY,
    claims_of,
    idp_jwks,
    jwk_of,
    jwks_url,  # noqa: F401 - the IdP's JWKS served over HTTP, a fixture
    token,
)


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def signed_payload(payload: bytes | dict[str, Any], **header: Any) -> str:
    """A correctly RS256-signed token around any payload and header, however odd: signed
    here, since the JWT library refuses to encode most of them."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64(json.dumps({'alg': 'RS256', 'kid': 'k0', **header}))}.{b64(body)}"
    signature = SIGNING_KEY.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def hs256_keyed_with_the_public_key() -> str:
    """The key-confusion attack: HMAC with the RSA public key the JWKS publishes."""
    pem = SIGNING_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "kid": "k0"}))
    signing_input = f"{header}.{b64(json.dumps(claims_of()))}"
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def with_signature(tampered: str) -> str:
    header, payload, _ = token().split(".")
    return f"{header}.{payload}.{tampered}"


def deeply_nested() -> str:
    depth = 3_000
    return signed_payload(f'{{"sub": "x", "deep": {"[" * depth}{"]" * depth}}}'.encode())


MALFORMED: dict[str, Callable[[], str]] = {
    "header-not-base64": lambda: "eyJ***.e30.c2ln",
    "header-not-json": lambda: b64('{"alg": RS256}') + ".e30.c2ln",
    "header-not-an-object": lambda: b64('["RS256"]') + ".e30.c2ln",
    "payload-not-json": lambda: signed_payload(b"not json"),
    "payload-not-an-object": lambda: signed_payload(b'["sub", "x"]'),
    "signature-not-base64": lambda: with_signature("***"),
    "alg-none": lambda: jwt.encode(claims_of(), None, "none"),
    "alg-not-allowed": lambda: jwt.encode(claims_of(), SIGNING_KEY, "RS512", {"kid": "k0"}),
    "hs256-against-the-rsa-jwks": lambda: jwt.encode(claims_of(), "s" * 32, "HS256", {"kid": "k0"}),
    "hs256-keyed-with-the-public-key": hs256_keyed_with_the_public_key,
    "es256-token-on-the-rsa-key": lambda: token(EC_KEY, kid="k0", alg="ES256"),
    "rs256-token-on-the-ec-key": lambda: token(SIGNING_KEY, kid="k1", alg="RS256"),
    "ec-key-published-as-rs256": lambda: token(EC_KEY, kid="k2", alg="ES256"),
    "unknown-kid": lambda: token(kid="nobody-knows"),
    "kid-not-a-string": lambda: signed_payload(claims_of(), kid=[1, 2]),
    "b64-false-without-detached-payload": lambda: signed_payload(
        claims_of(), b64=False, crit=["b64"]
    ),
    "sub-empty": lambda: token(sub=""),
    "sub-absent": lambda: token(sub=None),
    "sub-blank": lambda: token(sub="   "),
    "sub-not-a-string": lambda: token(sub=42),
    "sub-longer-than-255": lambda: token(sub="s" * 256),
    "name-not-a-string": lambda: token(preferred_username=["olivia"]),
    "name-an-object": lambda: token(preferred_username={"first": "olivia"}),
    "name-absurdly-long": lambda: token(preferred_username="n" * 5_000),
    "roles-an-object": lambda: token(realm_access={"roles": {"admin": True}}),
    "roles-a-number": lambda: token(realm_access={"roles": 7}),
    "roles-not-all-strings": lambda: token(realm_access={"roles": ["duty-officer", 3]}),
    "roles-path-through-a-string": lambda: token(realm_access="duty-officer"),
    "roles-too-many": lambda: token(realm_access={"roles": [f"r{i}" for i in range(1_000)]}),
    "issuer-a-list": lambda: signed_payload(claims_of(iss=[ISSUER])),
    "audience-absent": lambda: token(aud=None),
    "exp-infinite": lambda: signed_payload(
        json.dumps(claims_of()).replace('"exp": ', '"exp": 1e400, "x": ').encode()
    ),
    "exp-not-a-number": lambda: token(exp="soon"),
    "deeply-nested-claim": deeply_nested,
    "token-absurdly-long": lambda: token(preferred_username="n" * 20_000),
}


@pytest.fixture(scope="module")
def jwks_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The IdP's keys plus a broken one: an EC key that claims the RS256 algorithm."""
    document = json.loads(idp_jwks())
    document["keys"].append(jwk_of(EC_KEY, "k2", "ES256") | {"alg": "RS256"})
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps(document))
    return path


def settings_for(**keys: Any) -> Any:
    return make_settings(
        1,
        oidc_issuer=ISSUER,
        oidc_audience=AUDIENCE,
        oidc_roles_claim="realm_access.roles",
        **keys,
    )


@pytest.fixture(scope="module", params=["jwks-url", "jwks-file"])
def verifier(request: pytest.FixtureRequest, jwks_file) -> OidcVerifier:
    if request.param == "jwks-url":
        found = OidcVerifier.from_settings(
            settings_for(oidc_jwks_url=request.getfixturevalue("jwks_url"))
        )
    else:
        found = OidcVerifier.from_settings(settings_for(oidc_jwks_file=jwks_file))
    assert found is not None
    return found


@pytest.fixture(scope="module")
def app(temporal_client: Client, jwks_file) -> FastAPI:
    settings = settings_for(oidc_jwks_file=jwks_file)
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    return create_app(build_context(settings, temporal_client, None, secret))


def test_the_table_is_broad():
    assert len(MALFORMED) >= 15


def test_a_well_formed_token_passes_the_same_verifier(verifier: OidcVerifier):
    """The control: what the table breaks is the only reason for each refusal."""
    assert verifier.verify(token()).id == f"oidc:{ISSUER}#user-1"


@pytest.mark.parametrize("case", MALFORMED)
def test_verify_refuses_every_malformed_token(verifier: OidcVerifier, case: str):
    with pytest.raises(InvalidIdentityToken):
        verifier.verify(MALFORMED[case]())


@pytest.mark.parametrize("case", MALFORMED)
async def test_the_api_answers_401_problem_json_to_every_malformed_token(app: FastAPI, case: str):
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://bulkhead.test") as http:
        headers = {"Authorization": f"Bearer {MALFORMED[case]()}"}
        read = await http.get("/v1/incidents/inc-none", headers=headers)
        act = await http.post(
            "/v1/incidents/inc-none/steps/s/approve", json={"reason": "x"}, headers=headers
        )
    for answer in (read, act):
        assert answer.status_code == 401, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.json()["status"] == 401
