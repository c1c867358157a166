"""Standard Webhooks verification: which requests pass, and what the error says when not."""

from __future__ import annotations

import base64
import time

import pytest

from orchestrator.webhooks import TOLERANCE_S, RecentIds, SignatureError, sign, verify

KEY_A = "whsec_" + base64.b64encode(b"a" * 32).decode()
KEY_B = "whsec_" + base64.b64encode(b"b" * 32).decode()
BODY = b'{"finding_info": {"uid": "det-1", "title": "t"}}'


def signed(
    body: bytes = BODY, key: str = KEY_A, *, msg_id: str = "msg_1", timestamp: int | None = None
) -> tuple[dict[str, str], int]:
    """Headers signed now (the library under `verify` checks the real clock too)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return sign(body, key, msg_id=msg_id, timestamp=ts), ts


def test_valid_signature_returns_the_webhook_id():
    headers, ts = signed(msg_id="msg_2Vx")
    assert verify(BODY, headers, [KEY_A], now=ts) == "msg_2Vx"


def test_valid_signature_is_accepted_with_the_default_clock():
    headers, _ = signed()
    assert verify(BODY, headers, [KEY_A]) == "msg_1"


def test_sign_produces_a_v1_signature_header():
    headers, ts = signed()
    assert headers["webhook-timestamp"] == str(ts)
    version, _, mac = headers["webhook-signature"].partition(",")
    assert version == "v1"
    assert len(base64.b64decode(mac)) == 32  # HMAC-SHA256


def test_signature_by_another_key_is_rejected():
    headers, ts = signed(key=KEY_B)
    with pytest.raises(SignatureError, match="no webhook-signature matches"):
        verify(BODY, headers, [KEY_A], now=ts)


def test_body_changed_after_signing_is_rejected():
    headers, ts = signed()
    with pytest.raises(SignatureError, match="no webhook-signature matches"):
        verify(BODY + b" ", headers, [KEY_A], now=ts)


def test_webhook_id_changed_after_signing_is_rejected():
    headers, ts = signed()
    headers["webhook-id"] = "msg_other"
    with pytest.raises(SignatureError):
        verify(BODY, headers, [KEY_A], now=ts)


def test_timestamp_older_than_tolerance_is_rejected_as_stale():
    headers, ts = signed()
    with pytest.raises(SignatureError, match=r"is 301 s old \(tolerance 300 s\)"):
        verify(BODY, headers, [KEY_A], now=ts + TOLERANCE_S + 1)


def test_timestamp_in_the_future_beyond_tolerance_is_rejected():
    headers, ts = signed()
    with pytest.raises(SignatureError, match="is 301 s in the future"):
        verify(BODY, headers, [KEY_A], now=ts - TOLERANCE_S - 1)


@pytest.mark.parametrize("offset", [-TOLERANCE_S, TOLERANCE_S])
def test_timestamp_exactly_at_tolerance_is_accepted(offset):
    headers, ts = signed()
    assert verify(BODY, headers, [KEY_A], now=ts + offset) == "msg_1"


def test_fixed_clock_accepts_a_signature_made_at_that_time():
    """`now=` is the clock: a request signed at that instant verifies whenever the test runs."""
    fixed = 1_700_000_000
    headers = sign(BODY, KEY_A, msg_id="msg_1", timestamp=fixed)
    assert verify(BODY, headers, [KEY_A], now=fixed) == "msg_1"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_named_in_the_error(missing):
    headers, ts = signed()
    del headers[missing]
    with pytest.raises(SignatureError, match=f"missing header\\(s\\): {missing}$"):
        verify(BODY, headers, [KEY_A], now=ts)


def test_every_missing_header_is_named():
    with pytest.raises(SignatureError) as caught:
        verify(BODY, {}, [KEY_A])
    assert str(caught.value) == (
        "missing header(s): webhook-id, webhook-timestamp, webhook-signature"
    )


def test_empty_header_counts_as_missing():
    headers, ts = signed()
    headers["webhook-id"] = ""
    with pytest.raises(SignatureError, match="missing header\\(s\\): webhook-id"):
        verify(BODY, headers, [KEY_A], now=ts)


@pytest.mark.parametrize("value", ["yesterday", "1.7e9", "1700000000.5", "0x10"])
def test_non_integer_timestamp_is_rejected(value):
    headers, ts = signed()
    headers["webhook-timestamp"] = value
    with pytest.raises(SignatureError, match="webhook-timestamp is not an integer"):
        verify(BODY, headers, [KEY_A], now=ts)


@pytest.mark.parametrize(
    "signature",
    [
        "garbage",
        "v1,@@@",
        "v1,",
        "v1,abc",  # bad base64 padding
        "v1,a,b",
        "v1,\u00e9t\u00e9",  # non-ASCII base64
        "v2,c2lnbmF0dXJl",  # unknown version only
        " ",
    ],
)
def test_malformed_signature_header_is_a_signature_error(signature):
    headers, ts = signed()
    headers["webhook-signature"] = signature
    with pytest.raises(SignatureError, match=r"no webhook-signature matches|no well-formed v1"):
        verify(BODY, headers, [KEY_A], now=ts)


def test_rotation_header_with_several_signatures_accepts_the_second():
    old, ts = signed(key=KEY_B)
    new, _ = signed(key=KEY_A, timestamp=ts)
    headers = dict(new)
    headers["webhook-signature"] = f"{old['webhook-signature']} {new['webhook-signature']}"
    assert verify(BODY, headers, [KEY_A], now=ts) == "msg_1"


def test_signature_of_unknown_version_is_skipped_not_fatal():
    headers, ts = signed()
    headers["webhook-signature"] = "v2,c2lnbmF0dXJl " + headers["webhook-signature"]
    assert verify(BODY, headers, [KEY_A], now=ts) == "msg_1"


def test_rotation_with_several_accepted_secrets_accepts_the_second():
    headers, ts = signed(key=KEY_B)
    assert verify(BODY, headers, [KEY_A, KEY_B], now=ts) == "msg_1"


def test_unparseable_accepted_secret_is_skipped_for_the_next():
    """A broken secret in the rotation list must not hide a good one after it."""
    headers, ts = signed(key=KEY_B)
    assert verify(BODY, headers, ["whsec_\u00e9", KEY_B], now=ts) == "msg_1"


def test_no_configured_secret_is_rejected():
    headers, ts = signed()
    with pytest.raises(SignatureError, match="no webhook secret is configured"):
        verify(BODY, headers, [], now=ts)


@pytest.mark.parametrize("secret", ["", "whsec_"])
def test_empty_configured_secret_is_a_signature_error(secret):
    headers, ts = signed()
    with pytest.raises(SignatureError):
        verify(BODY, headers, [secret], now=ts)


def test_non_utf8_body_is_rejected():
    headers, ts = signed()
    with pytest.raises(SignatureError, match="body is not UTF-8"):
        verify(b"\xff\xfe{}", headers, [KEY_A], now=ts)


def test_header_names_are_case_insensitive():
    headers, ts = signed()
    shouting = {k.upper(): v for k, v in headers.items()}
    titled = {k.title(): v for k, v in headers.items()}
    assert verify(BODY, shouting, [KEY_A], now=ts) == "msg_1"
    assert verify(BODY, titled, [KEY_A], now=ts) == "msg_1"


def test_recent_ids_remembers_what_was_added():
    recent = RecentIds(capacity=3)
    recent.add("generic:msg_1")
    assert "generic:msg_1" in recent
    assert "generic:msg_2" not in recent


def test_recent_ids_evicts_the_oldest_beyond_capacity():
    recent = RecentIds(capacity=2)
    for key in ("a", "b", "c"):
        recent.add(key)
    assert "a" not in recent
    assert "b" in recent
    assert "c" in recent


def test_recent_ids_readding_an_id_makes_it_newest():
    recent = RecentIds(capacity=2)
    recent.add("a")
    recent.add("b")
    recent.add("a")
    recent.add("c")
    assert "a" in recent
    assert "b" not in recent
