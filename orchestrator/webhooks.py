"""Standard Webhooks verification (https://www.standardwebhooks.com/), with key rotation.

The HMAC itself is the spec's reference library; this module adds what an operator needs:
several accepted secrets during rotation, and errors that say which check failed.
"""

from __future__ import annotations

import binascii
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

TOLERANCE_S = 300
REQUIRED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class SignatureError(Exception):
    """The request is not provably from a holder of the source's secret."""


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    *,
    now: float | None = None,
) -> str:
    """Return the webhook id when any accepted secret signed this body; raise otherwise."""
    lowered = {k.lower(): v for k, v in headers.items()}
    missing = [h for h in REQUIRED_HEADERS if not lowered.get(h)]
    if missing:
        raise SignatureError(f"missing header(s): {', '.join(missing)}")
    try:
        timestamp = int(lowered["webhook-timestamp"])
    except ValueError:
        raise SignatureError("webhook-timestamp is not an integer (seconds since epoch)") from None
    skew = (time.time() if now is None else now) - timestamp
    if skew > TOLERANCE_S:
        raise SignatureError(f"webhook-timestamp is {int(skew)} s old (tolerance {TOLERANCE_S} s)")
    if skew < -TOLERANCE_S:
        raise SignatureError(f"webhook-timestamp is {int(-skew)} s in the future")
    if not secrets:
        raise SignatureError("no webhook secret is configured for this source")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise SignatureError("body is not UTF-8") from None
    for secret in secrets:
        try:
            Webhook(secret).verify(text, lowered, json_parse=False)
        except (WebhookVerificationError, ValueError, binascii.Error):
            continue
        return lowered["webhook-id"]
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
