"""OIDC for responders: verify bearer JWTs from a configured issuer against its JWKS.

Production deployments put Bulkhead behind the city's identity provider; the token
principals of the principal store stay for break-glass use and for the lab. Roles come
from a claim (a list, a space-separated string, or a dotted path such as Keycloak's
`realm_access.roles`); only the roles Bulkhead knows are kept, and what a role may do is
still decided by the approval policy in Rego.

A token is anonymous input until it verifies: whatever its shape, a bad one is an
`InvalidIdentityToken` (401), never a crash. The principal's id is `oidc:<issuer>#<sub>`,
the one identity the IdP guarantees stable; the display name is only for people.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from contracts.incident import Principal
from orchestrator.config import Settings
from orchestrator.responders.principals import ROLES

JWKS_TIMEOUT_S = 5
JWKS_CACHE_S = 300
# Far above what an IdP issues; bounds the work an anonymous caller can make us do.
MAX_TOKEN_CHARS = 16_384
MAX_SUBJECT_CHARS = 255  # OIDC Core §2: sub "MUST NOT exceed 255 ASCII characters"
MAX_NAME_CLAIM_CHARS = 1_024
MAX_ROLE_NAMES = 256
DISPLAY_NAME_CHARS = 128
# Public-key algorithms only: with a shared-secret (HS*) key, whoever can read the JWKS can
# mint tokens, and an HS token "signed" with a public key is the classic confusion attack.
ASYMMETRIC_ALGORITHMS = frozenset(
    {
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
        "ES256",
        "ES256K",
        "ES384",
        "ES512",
        "EdDSA",
    }
)
# What a hostile token can make the JWT and crypto libraries raise besides their own errors:
# a key its algorithm cannot use (TypeError), out-of-range numbers (OverflowError), deep
# nesting (RecursionError), odd encodings (ValueError), a header missing a field (KeyError).
_MALFORMED = (jwt.PyJWTError, ValueError, TypeError, KeyError, ArithmeticError, RecursionError)


class InvalidIdentityToken(Exception):  # noqa: N818 - reads as "raise InvalidIdentityToken"
    """The JWT is not acceptable; the message says why, never the token."""


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


def oidc_principal_id(issuer: str, subject: str) -> str:
    """Unambiguous: an issuer URL carries no fragment (OIDC Discovery §3), so the first
    `#` ends it, and the `oidc:` namespace never meets a local principal's `local:`."""
    return f"oidc:{issuer}#{subject}"


class _FileKeys:
    """A JWKS kept in a file (offline deployments, tests): looked up by `kid`."""

    def __init__(self, document: str) -> None:
        self._keys = jwt.PyJWKSet.from_json(document)

    def get_signing_key_from_jwt(self, token: str) -> jwt.PyJWK:
        kid = jwt.get_unverified_header(token).get("kid")
        for key in self._keys.keys:
            if key.public_key_use in ("sig", None) and (kid is None or key.key_id == kid):
                return key
        raise jwt.PyJWKClientError(f"no signing key with kid {kid!r} in the configured JWKS")


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
        _check_settings(settings)
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
            audience=settings.oidc_audience or None,
            keys=keys,
            roles_claim=settings.oidc_roles_claim,
            name_claim=settings.oidc_name_claim,
            algorithms=tuple(settings.oidc_algorithms),
            leeway_s=settings.oidc_leeway_s,
        )

    def verify(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidIdentityToken(f"token longer than {MAX_TOKEN_CHARS} characters")
        try:
            key = self.keys.get_signing_key_from_jwt(token)
            # The PyJWK itself, not its raw key: PyJWT then verifies with the key's own
            # algorithm and refuses a token whose header names another one.
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
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
        except jwt.PyJWTError as exc:
            raise InvalidIdentityToken(f"token rejected: {exc}") from exc
        except _MALFORMED as exc:
            # Not echoed: a library's message about hostile input may quote the input.
            raise InvalidIdentityToken(f"token rejected: malformed ({type(exc).__name__})") from exc
        return Principal(
            id=oidc_principal_id(self.issuer, _subject(claims)),
            name=self._display_name(claims),
            roles=_known_roles(_claim(claims, self.roles_claim), self.roles_claim),
        )

    def _display_name(self, claims: dict[str, Any]) -> str:
        value = claims.get(self.name_claim)
        if value is not None and not isinstance(value, str):
            raise InvalidIdentityToken(f"claim {self.name_claim} is not a string")
        if value is not None and len(value) > MAX_NAME_CLAIM_CHARS:
            raise InvalidIdentityToken(f"claim {self.name_claim} is implausibly long")
        name = value if value and value.strip() else _subject(claims)
        return name[:DISPLAY_NAME_CHARS]


def _check_settings(settings: Settings) -> None:
    """Refuse to start on settings that would accept tokens nobody meant for us."""
    issuer = settings.oidc_issuer or ""
    if "#" in issuer or "?" in issuer:
        raise ValueError(f"oidc_issuer {issuer!r}: an issuer URL has no query or fragment")
    if not settings.oidc_audience and not settings.oidc_allow_any_audience:
        raise ValueError(
            "oidc_issuer is set but oidc_audience is not: set oidc_audience "
            "(BULKHEAD_OIDC_AUDIENCE) to Bulkhead's client id at the identity provider, or "
            "set oidc_allow_any_audience = true to accept tokens the issuer minted for any "
            "application"
        )
    unsafe = sorted(set(settings.oidc_algorithms) - ASYMMETRIC_ALGORITHMS)
    if unsafe or not settings.oidc_algorithms:
        raise ValueError(
            f"oidc_algorithms: {unsafe or 'none given'} not allowed; choose among "
            f"{sorted(ASYMMETRIC_ALGORITHMS)}"
        )


def _subject(claims: dict[str, Any]) -> str:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip():
        raise InvalidIdentityToken("the token names no subject (sub)")
    if len(subject) > MAX_SUBJECT_CHARS:
        raise InvalidIdentityToken(f"sub is longer than {MAX_SUBJECT_CHARS} characters")
    return subject


def _claim(claims: dict[str, Any], path: str) -> Any:
    """The claim at a dotted path; None when a part is absent."""
    value: Any = claims
    for part in path.split("."):
        if value is None:
            return None
        if not isinstance(value, dict):
            raise InvalidIdentityToken(f"claim {path}: {part} is not inside an object")
        value = value.get(part)
    return value


def _known_roles(value: Any, claim: str) -> list[str]:
    if value is None:
        names: list[str] = []
    elif isinstance(value, str):
        names = value.split()
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        names = value
    else:
        raise InvalidIdentityToken(
            f"claim {claim} is neither a list of strings nor a space-separated string"
        )
    if len(names) > MAX_ROLE_NAMES:
        raise InvalidIdentityToken(f"claim {claim} lists more than {MAX_ROLE_NAMES} roles")
    return sorted({n for n in names if n in ROLES})
