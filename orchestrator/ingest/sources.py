"""Per-source webhook authentication: who may post findings as which SIEM.

Each source picks the strongest scheme its sender supports (docs/SIEMS.md):

- `hmac` (default): Standard Webhooks signatures; several accepted secrets for rotation,
  a timestamp tolerance, and the `webhook-id` as the delivery id (a replay is a
  duplicate). A source without its own secrets uses BULKHEAD_WEBHOOK_SECRET.
- `bearer`: `Authorization: Bearer <token>`, for senders that can set a header but not
  sign (Falcosidekick, Alertmanager, Kibana, Logic Apps, log forwarders).
- `url-token`: `?token=<token>`, for Splunk's webhook action, which can set nothing else.
  The token is in the URL, so anything logging URLs on the way must not log this one.

Tokens are compared in constant time, as SHA-256 digests so their length does not leak
either. Bearer and URL-token requests have no signed id or timestamp: a `webhook-id` (or
`idempotency-key`) header names the delivery when the sender sets one, otherwise the
body's digest does, so a resent identical body is still answered as a duplicate.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, SecretStr, model_validator

from orchestrator.ingest import signatures as webhooks

Scheme = Literal["hmac", "bearer", "url-token"]
MIN_TOKEN_CHARS = 24  # ~140 bits as base64: a token nobody guesses in 10,000 tries, or ever
SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret


class SourceConfig(BaseModel):
    """One `[sources.<name>]` table of the config file."""

    model_config = ConfigDict(extra="forbid")

    auth: Scheme = "hmac"
    # hmac: accepted `whsec_<base64>` secrets; list the new one next to the old while
    # senders rotate. Empty: the global webhook secret.
    secrets: list[SecretStr] = Field(default_factory=list)
    # bearer / url-token: accepted tokens (several during rotation).
    tokens: list[SecretStr] = Field(default_factory=list)
    tolerance_s: int = Field(default=webhooks.TOLERANCE_S, ge=1, le=3600)
    # Client networks allowed to post as this source; empty allows any address.
    allow_ips: list[IPvAnyNetwork] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> SourceConfig:
        if self.auth == "hmac":
            if self.tokens:
                raise ValueError("tokens are for auth 'bearer' or 'url-token'; hmac uses secrets")
            for index, secret in enumerate(self.secrets):
                _check_secret(secret.get_secret_value(), index)
            return self
        if self.secrets:
            raise ValueError(f"secrets are for auth 'hmac'; {self.auth!r} uses tokens")
        if not self.tokens:
            raise ValueError(f"auth {self.auth!r} needs at least one token")
        for index, token in enumerate(self.tokens):
            if len(token.get_secret_value()) < MIN_TOKEN_CHARS:
                raise ValueError(f"tokens[{index}] is shorter than {MIN_TOKEN_CHARS} characters")
        return self


def _check_secret(secret: str, index: int) -> None:
    """Fail at startup, not on the first webhook, for a secret that can never verify."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"secrets[{index}] is not whsec_<base64 key>") from None
    if len(key) < 16:
        raise ValueError(f"secrets[{index}] holds a key under 16 bytes")


class AuthError(Exception):
    """The request may not post as this source; `status` is 401 or 403."""

    def __init__(self, status: int, detail: str, *, challenge: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.challenge = challenge


def check_client(config: SourceConfig, client_host: str | None) -> None:
    """403 unless the client address is in the source's allowlist (when it has one)."""
    if not config.allow_ips:
        return
    try:
        address = ipaddress.ip_address(client_host or "")
    except ValueError:
        raise AuthError(
            403, "the client address is unknown; this source has an IP allowlist"
        ) from None
    if not any(address in network for network in config.allow_ips):
        raise AuthError(403, f"client address {address} is not allowed to post to this source")


def authenticate(
    config: SourceConfig,
    fallback_secrets: Sequence[str],
    body: bytes,
    headers: Mapping[str, str],
    query_token: str | None,
    *,
    now: float | None = None,
) -> str:
    """The delivery id of an authentic request; AuthError(401) otherwise."""
    if config.auth == "hmac":
        secrets = [s.get_secret_value() for s in config.secrets] or list(fallback_secrets)
        try:
            return webhooks.verify(body, headers, secrets, now=now, tolerance_s=config.tolerance_s)
        except webhooks.SignatureError as exc:
            raise AuthError(401, str(exc)) from None
    if config.auth == "bearer":
        scheme, _, offered = (headers.get("authorization") or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not offered.strip():
            raise AuthError(
                401, "missing header: Authorization: Bearer <token>", challenge=_CHALLENGE
            )
        if not token_matches(offered.strip(), config.tokens):
            raise AuthError(401, "the bearer token is not accepted", challenge=_CHALLENGE)
    else:
        if not query_token:
            raise AuthError(401, "missing query parameter: token")
        if not token_matches(query_token, config.tokens):
            raise AuthError(401, "the URL token is not accepted")
    given = headers.get("webhook-id") or headers.get("idempotency-key")
    if given and len(given) <= webhooks.MAX_ID_CHARS:
        return given
    return "sha256:" + hashlib.sha256(body).hexdigest()


def overlong_delivery_id(headers: Mapping[str, str]) -> str | None:
    """Why a delivery-id header (`webhook-id`, `idempotency-key`) cannot be taken, or None.

    Ids are remembered (the duplicate cache, the workflow's state), so the API caps them
    as its OpenAPI document says. A longer one is refused, whatever the source's scheme
    reads: taking the body's digest in its place would answer 202 to a request the sender
    meant to be told about."""
    for name in ("webhook-id", "idempotency-key"):
        value = headers.get(name)
        if value is not None and len(value) > webhooks.MAX_ID_CHARS:
            return f"header {name} is {len(value)} characters; at most {webhooks.MAX_ID_CHARS}"
    return None


_CHALLENGE = 'Bearer realm="bulkhead-webhooks"'


def token_matches(offered: str, accepted: Sequence[SecretStr]) -> bool:
    """Constant time: every accepted token is compared, digests hide the lengths."""
    offered_digest = hashlib.sha256(offered.encode("utf-8", "surrogatepass")).digest()
    matched = False
    for token in accepted:
        expected = hashlib.sha256(token.get_secret_value().encode()).digest()
        matched |= hmac.compare_digest(offered_digest, expected)
    return matched


def resolve(sources: Mapping[str, SourceConfig], source: str) -> SourceConfig:
    """The source's own table, else HMAC with the global secret."""
    return sources.get(source) or DEFAULT


DEFAULT = SourceConfig()
