"""Standard Webhooks verification (https://www.standardwebhooks.com/), with key rotation.

The HMAC comes from the spec's reference library (`Webhook.sign`); this module adds what
an operator needs: several accepted secrets during rotation, a tolerant parse of the
signature list, a clock that tests can fix, and errors that say which check failed.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

TOLERANCE_S = 300
MAX_ID_CHARS = 256  # ids are remembered (duplicate cache, workflow state): keep them small
MAX_SIGNATURES = 16  # a rotation needs two or three; more is someone probing
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
REQUIRED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class SignatureError(Exception):
    """The request is not provably from a holder of the source's secret."""


def _offered_signatures(header: str) -> list[bytes]:
    """Every well-formed `v1,<base64>` entry; others (other versions, junk) are skipped."""
    offered: list[bytes] = []
    for entry in header.split()[:MAX_SIGNATURES]:
        version, _, encoded = entry.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            offered.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return offered


@functools.lru_cache(maxsize=64)
def _key(secret: str) -> bytes | None:
    """The HMAC key of a configured secret (`whsec_` + base64, as Standard Webhooks
    defines it), decoded once: a storm verifies thousands of bodies with one secret."""
    try:
        # As the standardwebhooks library reads it: padding added, extra padding ignored.
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX) + "==")
    except (binascii.Error, ValueError):
        return None  # an unusable configured secret can never match
    return key or None


def _expected(secret: str, msg_id: str, timestamp: int, body: bytes) -> bytes | None:
    """HMAC-SHA256 over `{id}.{timestamp}.{body}` (Standard Webhooks, v1)."""
    key = _key(secret)
    if key is None:
        return None
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    return hmac.new(key, signed, hashlib.sha256).digest()


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    *,
    now: float | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> str:
    """Return the webhook id when any accepted secret signed this body; raise otherwise."""
    lowered = {k.lower(): v for k, v in headers.items()}
    missing = [h for h in REQUIRED_HEADERS if not lowered.get(h)]
    if missing:
        raise SignatureError(f"missing header(s): {', '.join(missing)}")
    if len(lowered["webhook-id"]) > MAX_ID_CHARS:
        raise SignatureError(f"webhook-id is longer than {MAX_ID_CHARS} characters")
    stamp = lowered["webhook-timestamp"].strip()
    # Plain ASCII digits only: int() would also take "+1", "1_000" and other scripts' digits.
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
        raise SignatureError("webhook-timestamp is not an integer (seconds since epoch)")
    timestamp = int(stamp)
    skew = (time.time() if now is None else now) - timestamp
    if skew > tolerance_s:
        raise SignatureError(f"webhook-timestamp is {int(skew)} s old (tolerance {tolerance_s} s)")
    if skew < -tolerance_s:
        raise SignatureError(f"webhook-timestamp is {int(-skew)} s in the future")
    if not secrets:
        raise SignatureError("no webhook secret is configured for this source")
    try:
        body.decode()
    except UnicodeDecodeError:
        raise SignatureError("body is not UTF-8") from None
    msg_id = lowered["webhook-id"]
    offered = _offered_signatures(lowered["webhook-signature"])
    if not offered:
        raise SignatureError("webhook-signature holds no well-formed v1 signature")
    for secret in secrets:
        expected = _expected(secret, msg_id, timestamp, body)
        # Compare against every offered signature (no early exit on the first mismatch).
        if expected is not None and any(hmac.compare_digest(expected, s) for s in offered):
            return msg_id
    raise SignatureError("no webhook-signature matches an accepted secret")


def sign(body: bytes, secret: str, *, msg_id: str, timestamp: int) -> dict[str, str]:
    """Headers a sender attaches; used by `bulkhead send` and the tests."""
    signature = Webhook(secret).sign(
        msg_id, datetime.fromtimestamp(timestamp, tz=UTC), body.decode()
    )
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


class RecentIds:
    """A bounded memory of delivered webhook ids, so a redelivery starts nothing new."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    def add(self, key: str) -> None:
        self._ids[key] = None
        self._ids.move_to_end(key)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
