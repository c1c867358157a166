"""Standard Webhooks verification: which requests pass, and what the error says when not."""

from __future__ import annotations

import base64
import hashlib
import hmac as hmac_module
import json
import re
import time
from unittest import mock

import pytest
from pydantic import SecretStr, ValidationError

from orchestrator.config import load_settings
from orchestrator.ingest import sources
from orchestrator.ingest.signatures import (
    MAX_ID_CHARS,
    TOLERANCE_S,
    RecentIds,
    SignatureError,
    sign,
    verify,
)
from orchestrator.ingest.sources import (
    AuthError,
    SourceConfig,
    authenticate,
    check_client,
    resolve,
    token_matches,
)

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


# --- per-source authentication (orchestrator.ingest.sources) ----------------------------------

TOKEN = "t" * 32


def test_webhook_id_longer_than_the_limit_is_rejected():
    headers, ts = signed(msg_id="m" * (MAX_ID_CHARS + 1))
    with pytest.raises(SignatureError, match="webhook-id is longer than 256"):
        verify(BODY, headers, [KEY_A], now=ts)


def test_timestamp_with_sign_or_underscores_is_not_an_integer():
    for value in ("+1700000000", "1_700_000_000", "\u0661\u0667"):
        headers, ts = signed()
        headers["webhook-timestamp"] = value
        with pytest.raises(SignatureError, match="not an integer"):
            verify(BODY, headers, [KEY_A], now=ts)


def test_per_source_tolerance_narrows_the_window():
    headers, ts = signed()
    config = SourceConfig(secrets=[KEY_A], tolerance_s=30)
    with pytest.raises(AuthError, match="is 31 s old"):
        authenticate(config, [], BODY, headers, None, now=ts + 31)
    assert authenticate(config, [], BODY, headers, None, now=ts + 30) == "msg_1"


def test_source_secrets_replace_the_global_one():
    headers, ts = signed(key=KEY_A)
    with pytest.raises(AuthError) as caught:
        authenticate(SourceConfig(secrets=[KEY_B]), [KEY_A], BODY, headers, None, now=ts)
    assert caught.value.status == 401
    assert authenticate(SourceConfig(), [KEY_A], BODY, headers, None, now=ts) == "msg_1"


def test_rotation_accepts_old_and_new_source_secrets():
    config = SourceConfig(secrets=[KEY_B, KEY_A])
    for key in (KEY_A, KEY_B):
        headers, ts = signed(key=key)
        assert authenticate(config, [], BODY, headers, None, now=ts) == "msg_1"


def test_bearer_token_is_checked_and_the_delivery_id_is_the_body_digest():
    config = SourceConfig(auth="bearer", tokens=[TOKEN])
    good = {"authorization": f"Bearer {TOKEN}"}
    delivery = authenticate(config, [], BODY, good, None)
    assert delivery == "sha256:" + hashlib.sha256(BODY).hexdigest()
    assert authenticate(config, [], BODY, {**good, "idempotency-key": "evt-1"}, None) == "evt-1"
    assert authenticate(config, [], BODY, {**good, "webhook-id": "msg_9"}, None) == "msg_9"
    assert authenticate(config, [], BODY, {"authorization": f"bearer  {TOKEN} "}, None)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing header: Authorization: Bearer <token>"),
        ({"authorization": "Basic dXNlcjpwdw=="}, "missing header"),
        ({"authorization": "Bearer "}, "missing header"),
        ({"authorization": "Bearer " + "u" * 32}, "the bearer token is not accepted"),
        ({"authorization": "Bearer " + TOKEN[:-1]}, "the bearer token is not accepted"),
    ],
)
def test_bearer_refusals_say_why_and_challenge(headers, message):
    config = SourceConfig(auth="bearer", tokens=[TOKEN])
    with pytest.raises(AuthError, match=re.escape(message)) as caught:
        authenticate(config, [], BODY, headers, None)
    assert caught.value.status == 401
    assert caught.value.challenge == 'Bearer realm="bulkhead-webhooks"'


def test_bearer_source_ignores_a_valid_hmac_signature():
    headers, ts = signed()
    config = SourceConfig(auth="bearer", tokens=[TOKEN])
    with pytest.raises(AuthError, match="missing header"):
        authenticate(config, [KEY_A], BODY, headers, None, now=ts)


def test_url_token_is_read_from_the_query():
    config = SourceConfig(auth="url-token", tokens=["old" + TOKEN, TOKEN])
    assert authenticate(config, [], BODY, {}, TOKEN).startswith("sha256:")
    with pytest.raises(AuthError, match="missing query parameter: token"):
        authenticate(config, [], BODY, {}, None)
    with pytest.raises(AuthError, match="the URL token is not accepted"):
        authenticate(config, [], BODY, {}, TOKEN + "x")


def test_token_comparison_looks_at_every_accepted_token():
    """Constant time: no early exit, whichever token matches."""
    calls: list[int] = []
    real = hmac_module.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return real(a, b)

    tokens = [SecretStr("a" * 32), SecretStr(TOKEN), SecretStr("c" * 32)]
    with mock.patch.object(sources.hmac, "compare_digest", counting):
        assert token_matches(TOKEN, tokens)
        assert len(calls) == 3
        calls.clear()
        assert not token_matches("nope", tokens)
        assert len(calls) == 3


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"auth": "bearer"}, "needs at least one token"),
        ({"auth": "bearer", "tokens": ["short"]}, "shorter than 24"),
        ({"auth": "url-token", "tokens": [TOKEN], "secrets": [KEY_A]}, "secrets are for auth"),
        ({"tokens": [TOKEN]}, "tokens are for auth"),
        ({"secrets": ["whsec_not base64!"]}, "is not whsec_<base64 key>"),
        ({"secrets": ["whsec_" + base64.b64encode(b"k" * 8).decode()]}, "under 16 bytes"),
        ({"auth": "mtls"}, "Input should be"),
        ({"allow_ips": ["not-a-network"]}, "allow_ips"),
        ({"tolerance_s": 0}, "tolerance_s"),
        ({"secret": KEY_A}, "Extra inputs"),
    ],
)
def test_bad_source_config_fails_at_startup(config, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        SourceConfig.model_validate(config)


def test_secrets_never_show_in_the_config_repr():
    config = SourceConfig(auth="bearer", tokens=[TOKEN])
    assert TOKEN not in repr(config)
    assert TOKEN not in str(config.model_dump())


@pytest.mark.parametrize(
    ("networks", "client", "allowed"),
    [
        ([], "203.0.113.9", True),
        (["198.18.40.0/24"], "198.18.40.77", True),
        (["198.18.40.0/24"], "198.18.41.1", False),
        (["2001:db8::/32"], "2001:db8::1", True),
        (["198.18.40.0/24"], None, False),
        (["198.18.40.0/24"], "testclient", False),
    ],
)
def test_ip_allowlist(networks, client, allowed):
    config = SourceConfig(allow_ips=networks)
    if allowed:
        check_client(config, client)
        return
    with pytest.raises(AuthError) as caught:
        check_client(config, client)
    assert caught.value.status == 403


def test_settings_read_sources_from_toml_and_merge_json_env_over_it(tmp_path, monkeypatch):
    path = tmp_path / "bulkhead.toml"
    path.write_text(
        '[sources.splunk]\nauth = "url-token"\ntokens = ["' + TOKEN + '"]\n'
        'allow_ips = ["198.18.40.10/32"]\n'
    )
    monkeypatch.setenv("BULKHEAD_SOURCES", json.dumps({"splunk": {"tokens": ["n" * 32]}}))
    settings = load_settings(path)
    splunk = settings.sources["splunk"]
    assert splunk.auth == "url-token"
    assert [t.get_secret_value() for t in splunk.tokens] == ["n" * 32]
    assert [str(n) for n in splunk.allow_ips] == ["198.18.40.10/32"]
    assert resolve(settings.sources, "wazuh").auth == "hmac"
