"""OIDC for responders: verify bearer JWTs from a configured issuer against its JWKS.

Production deployments put Bulkhead behind the city's identity provider; the token
principals of the principal store stay for break-glass use and for the lab. Roles come
from a claim (a list, a space-separated string, or a dotted path such as Keycloak's
`realm_access.roles`); only the roles Bulkhead knows are kept, and what a role may do is
still decided by the approval policy in Rego.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from orchestrator.config import Settings
from orchestrator.principals import ROLES
from workflows.state import Principal

JWKS_TIMEOUT_S = 5
JWKS_CACHE_S = 300


class InvalidIdentityToken(Exception):  # noqa: N818 - reads as "raise InvalidIdentityToken"
    """The JWT is not acceptable; the message says why, never the token."""


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


class _FileKeys:
    """A JWKS kept in a file (offline deployments, tests): looked up by `kid`."""

    def __init__(self, document: str) -> None:
        self._keys = jwt.PyJWKSet.from_json(document)

    def get_signing_key_from_jwt(self, token: str) -> jwt.PyJWK:
        kid = jwt.get_unverified_header(token).get("kid")
        for key in self._keys.keys:
            if kid is None or key.key_id == kid:
                return key
        raise jwt.PyJWKClientError(f"no key with kid {kid!r} in the configured JWKS")


@dataclass(frozen=True)
class OidcVerifier:
    issuer: str
    audience: str | None
    keys: jwt.PyJWKClient | _FileKeys
    roles_claim: str
    name_claim: str
    algorithms: tuple[str, ...]
    leeway_s: int

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcVerifier | None:
        if not settings.oidc_issuer:
            return None
        keys: jwt.PyJWKClient | _FileKeys
        if settings.oidc_jwks_file is not None:
            keys = _FileKeys(settings.oidc_jwks_file.read_text())
        elif settings.oidc_jwks_url:
            keys = jwt.PyJWKClient(
                settings.oidc_jwks_url, lifespan=JWKS_CACHE_S, timeout=JWKS_TIMEOUT_S
            )
        else:
            raise ValueError("oidc_issuer is set: set oidc_jwks_url or oidc_jwks_file too")
        return cls(
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            keys=keys,
            roles_claim=settings.oidc_roles_claim,
            name_claim=settings.oidc_name_claim,
            algorithms=tuple(settings.oidc_algorithms),
            leeway_s=settings.oidc_leeway_s,
        )

    def verify(self, token: str) -> Principal:
        try:
            key = self.keys.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=list(self.algorithms),
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway_s,
                options={
                    "require": ["exp", "iss", "sub"],
                    "verify_aud": self.audience is not None,
                },
            )
        except jwt.PyJWKClientError as exc:
            raise InvalidIdentityToken(f"signing key not found: {exc}") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidIdentityToken(f"token rejected: {exc}") from exc
        name = claims.get(self.name_claim) or claims["sub"]
        return Principal(name=str(name)[:128], roles=_known_roles(_claim(claims, self.roles_claim)))


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _known_roles(value: Any) -> list[str]:
    if isinstance(value, str):
        names = value.split()
    elif isinstance(value, list):
        names = [v for v in value if isinstance(v, str)]
    else:
        names = []
    return sorted({n for n in names if n in ROLES})
