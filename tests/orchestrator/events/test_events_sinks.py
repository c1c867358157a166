"""The sinks against real receivers: a Standard Webhooks endpoint, Debian's rsyslog (RFC
5424 over TCP, octet-counted), and a TLS syslog listener with a CA the test makes."""

from __future__ import annotations

import json

import pytest
from certs import TestCA
from conftest import free_port
from event_receivers import Rsyslog, TlsSyslogReceiver, WebhookReceiver, needs_rsyslog

from orchestrator.config import new_webhook_secret
from orchestrator.events.lookup import StepFacts
from orchestrator.events.ocsf import remediation_event
from orchestrator.events.sinks import (
    EventRejectedError,
    SinkDownError,
    Stored,
    SyslogSink,
    WebhookSink,
    parse_address,
    rfc5424,
)
from orchestrator.events.trail import Outcome, StepOutcome


def stored(n: int, *, outcome: Outcome = Outcome.CONTAINED) -> Stored:
    event = remediation_event(
        StepOutcome(
            incident_id="198.18.40.33",
            seq=n,
            at=f"2026-11-26T10:00:{n:02d}.5+00:00",
            step_id=f"quarantine:eng-ws-{n:02d}",
            outcome=outcome,
            reason="verified",
        ),
        StepFacts("nftables", "contain", {"device": f"eng-ws-{n:02d}"}),
        f"00000000-0000-4000-8000-{n:012d}",
    )
    return Stored(event["metadata"]["uid"], json.dumps(event).encode())


@pytest.fixture
def receiver():
    state = WebhookReceiver(new_webhook_secret()).start()
    yield state
    state.stop()


async def test_webhook_events_are_signed_and_a_repeat_has_the_same_id(receiver):
    sink = WebhookSink(receiver.url, receiver.secret)
    try:
        await sink.send([stored(1)])
        await sink.send([stored(1)])  # a retry after a lost answer
        await sink.send([stored(2)])
    finally:
        await sink.close()
    assert receiver.rejected == 0
    assert receiver.deliveries == 3
    assert sorted(receiver.events) == [stored(1).event_id, stored(2).event_id]
    assert receiver.events[stored(1).event_id]["command_uid"] == "quarantine:eng-ws-01"


async def test_webhook_signed_with_another_secret_is_refused_and_kept(receiver):
    sink = WebhookSink(receiver.url, new_webhook_secret())
    try:
        with pytest.raises(EventRejectedError, match="401"):
            await sink.send([stored(1)])
    finally:
        await sink.close()
    assert receiver.rejected == 1 and receiver.events == {}


@pytest.mark.parametrize(
    ("status", "error"), [(503, SinkDownError), (429, SinkDownError), (400, EventRejectedError)]
)
async def test_webhook_answers_say_whether_to_wait_or_set_one_event_aside(receiver, status, error):
    receiver.answer = status
    sink = WebhookSink(receiver.url, receiver.secret)
    try:
        with pytest.raises(error, match=str(status)):
            await sink.send([stored(1)])
    finally:
        await sink.close()


async def test_an_unreachable_webhook_is_down_and_its_query_is_never_shown():
    url = f"http://127.0.0.1:{free_port()}/hook?token=s3cret"
    sink = WebhookSink(url, new_webhook_secret())
    try:
        with pytest.raises(SinkDownError) as down:
            await sink.send([stored(1)])
    finally:
        await sink.close()
    assert "s3cret" not in str(down.value)


def test_a_webhook_secret_that_is_not_standard_webhooks_is_refused():
    with pytest.raises(ValueError, match="whsec_"):
        WebhookSink("http://127.0.0.1:1/", "plain-password")


def test_rfc5424_header_fields():
    line = rfc5424(json.loads(stored(3, outcome=Outcome.FAILED).body), hostname="worker-1")
    text = line.decode("ascii")
    # facility 13 (log audit) * 8 + severity 3 (error) = 107
    assert text.startswith(
        '<107>1 2026-11-26T10:00:03.500Z worker-1 bulkhead - ocsf-7004 [origin software="Bulkhead" '
    )
    assert json.loads(text.split("] ", 1)[1])["metadata"]["uid"] == stored(3).event_id


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:6514", ("127.0.0.1", 6514)),
        ("[::1]:1514", ("::1", 1514)),
        ("siem.example", ("siem.example", 514)),
    ],
)
def test_syslog_addresses(address, expected):
    assert parse_address(address, 514) == expected


@needs_rsyslog
async def test_rsyslog_receives_each_event_as_an_rfc5424_message(tmp_path):
    rsyslog = Rsyslog(tmp_path).start()
    try:
        sink = SyslogSink(f"127.0.0.1:{rsyslog.port}", hostname="worker-1")
        await sink.send([stored(1), stored(2, outcome=Outcome.ESCALATED)])
        await sink.send([stored(3, outcome=Outcome.REVERTED)])
        messages = await rsyslog.wait_for(3)
    finally:
        rsyslog.stop()
    assert [m["event"]["metadata"]["uid"] for m in messages] == [
        stored(n).event_id for n in (1, 2, 3)
    ]
    first = messages[0]
    assert (first["pri"], first["version"], first["hostname"], first["app"]) == (
        "109",
        "1",
        "worker-1",
        "bulkhead",
    )
    assert first["msgid"] == "ocsf-7004"
    assert first["procid"] == "-"
    assert first["timestamp"].startswith("2026-11-26T10:00:01.5")
    assert (
        first["sd"]
        == '[origin software="Bulkhead" swVersion="'
        + first["event"]["metadata"]["product"]["version"]
        + '"]'
    )
    assert json.loads(stored(1).body) == first["event"]
    assert messages[1]["pri"] == str(13 * 8 + 4)  # an escalation is a warning


@needs_rsyslog
async def test_syslog_down_is_an_error_to_retry(tmp_path):
    sink = SyslogSink(f"127.0.0.1:{free_port()}", timeout_s=2)
    with pytest.raises(SinkDownError):
        await sink.send([stored(1)])


async def test_syslog_over_tls_with_the_ca_setting(tmp_path):
    ca = TestCA(tmp_path)
    issued = ca.issue("localhost")
    listener = await TlsSyslogReceiver(issued.cert, issued.key).start()
    try:
        sink = SyslogSink(f"localhost:{listener.port}", ca_file=ca.pem)
        await sink.send([stored(1), stored(2)])
        untrusted = SyslogSink(f"localhost:{listener.port}", tls=True, timeout_s=2)
        with pytest.raises(SinkDownError):
            await untrusted.send([stored(3)])  # the system's roots do not know the test CA
    finally:
        await listener.stop()
    assert [json.loads(f.split(b"] ", 1)[1])["metadata"]["uid"] for f in listener.frames] == [
        stored(1).event_id,
        stored(2).event_id,
    ]
