"""The notifier against real receivers: a loopback JSON webhook and an aiosmtpd SMTP
server, through Apprise, from an audit trail on disk; and a storm of 1,000."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from apprise.plugins.slack import NotifySlack
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from orchestrator.notify.channels import channels_of
from orchestrator.notify.lookup import NoFacts
from orchestrator.notify.notifier import Notifier
from orchestrator.policy.embedded import EmbeddedEngine

pytest.importorskip("aiosmtpd", reason="aiosmtpd is a test dependency (make venv)")

from notify_receivers import json_receiver, smtp_receiver, tls_json_receiver

POLICIES = Path(__file__).resolve().parents[3] / "policies"
PUBLIC = "https://bulkhead.city.example"


class Facts:
    async def facts(self, incident_id: str, step_id: str | None) -> dict[str, Any]:
        return {"zone": "energy", "plan": "set rtu-e01 to local_manual; was remote",
                "deadline": "2026-12-06T23:40:00Z", "required_approvals": 2}  # fmt: skip


def trail(path: Path, entries: list[tuple[str, str, dict[str, Any]]]) -> None:
    with path.open("a") as handle:
        for seq, (incident, kind, detail) in enumerate(entries, 1):
            line = {"incident_id": incident, "seq": seq, "at": "2026-12-06T23:00:00Z",
                    "kind": kind, "detail": detail}  # fmt: skip
            handle.write(json.dumps(line) + "\n")


def notifier(tmp_path: Path, urls: list[str], lookup: Any = None) -> Notifier:
    built = Notifier(
        audit_path=tmp_path / "audit.jsonl",
        state_dir=tmp_path,
        channels=channels_of(urls),
        engine=EmbeddedEngine(POLICIES),
        lookup=lookup or NoFacts(),
        public_url=PUBLIC,
        registry=CollectorRegistry(),
    )
    built.prepare()
    return built


async def deliver_all(pager: Notifier, *, end_windows: bool = True) -> None:
    while await pager.read_once():
        pass
    if end_windows:
        await pager.flush(float("inf"))
    for channel in pager.channels:
        await pager.drain(channel)


async def test_approval_needed_reaches_a_json_webhook_with_the_console_link(tmp_path):
    with json_receiver() as hook:
        pager = notifier(tmp_path, [f"duty=json://127.0.0.1:{hook.port}/page"], Facts())
        trail(tmp_path / "audit.jsonl", [("inc-substation", "step.planned",
                                           {"step": "s1", "awaiting_approval": True})])  # fmt: skip
        await deliver_all(pager)
    [body] = hook.bodies
    assert "inc-substation" in body["title"]
    assert f"{PUBLIC}/console/incidents/inc-substation" in body["message"]
    assert "Plan: set rtu-e01 to local_manual; was remote" in body["message"]
    assert "Approve by: 2026-12-06T23:40:00Z" in body["message"]
    delivered = pager.counted.labels(channel=f"json://127.0.0.1:{hook.port}", outcome="delivered")
    assert delivered._value.get() == 1
    [logged] = [json.loads(x) for x in (tmp_path / "notifications.jsonl").read_text().splitlines()]
    assert logged["outcome"] == "delivered" and logged["incidents"] == ["inc-substation"]


async def test_a_guard_rollback_reaches_an_smtp_server(tmp_path):
    with smtp_receiver() as mailbox:
        url = (f"mailto://bulkhead@127.0.0.1:{mailbox.port}?smtp=127.0.0.1&mode=insecure"
               "&from=bulkhead@city.example&to=duty@city.example")  # fmt: skip
        pager = notifier(tmp_path, [url])
        trail(tmp_path / "audit.jsonl", [("inc-9", "guard.tripped",
                                           {"step": "s2", "services": ["scada-hmi"]})])  # fmt: skip
        await deliver_all(pager)
    [(_sender, recipients, content)] = mailbox.messages
    assert recipients == ["duty@city.example"]
    assert "Guard rolled a step back" in content and "inc-9" in content
    assert "scada-hmi unhealthy" in content


async def test_a_failing_channel_keeps_its_messages_and_counts_the_failure(tmp_path):
    with json_receiver() as hook:
        hook.status = 500
        pager = notifier(tmp_path, [f"json://127.0.0.1:{hook.port}/page"])
        trail(tmp_path / "audit.jsonl", [("inc-1", "step.failed", {"step": "s1"})])
        await deliver_all(pager)
        name = f"json://127.0.0.1:{hook.port}"
        assert pager.counted.labels(channel=name, outcome="failed")._value.get() == 1
        assert pager.outbox.depth(name) == 1  # kept for the next try
        hook.status = 200
        assert await pager.drain(pager.channels[0])
    assert len(hook.bodies) == 1 and pager.outbox.depth(name) == 0


async def test_a_storm_of_1000_is_at_most_10_messages_per_channel_with_a_digest(tmp_path):
    with json_receiver() as duty, json_receiver() as log:
        pager = notifier(
            tmp_path,
            [f"duty=json://127.0.0.1:{duty.port}/d", f"log=json://127.0.0.1:{log.port}/l"],
        )
        entries: list[tuple[str, str, dict[str, Any]]] = []
        for i in range(1000):
            entries.append((f"inc-{i}", "incident.opened", {"incident": f"inc-{i}"}))
            if i % 250 == 0:  # 4 need approval
                entries.append((f"inc-{i}", "step.awaiting_approval", {"step": "s1"}))
        trail(tmp_path / "audit.jsonl", entries)
        await deliver_all(pager)
    for receiver in (duty, log):
        assert 1 <= len(receiver.bodies) <= 10
    assert len(duty.bodies) == 4  # 3 approvals on their own, the 4th waits for the window
    # The log channel: inc-0 opened, inc-0 needs approval, inc-1 opened, then the digest
    # of the other 998 incidents, 3 of which need approval.
    assert len(log.bodies) == 4
    digest = log.bodies[-1]
    assert digest["title"] == (
        "[Bulkhead] 998 incidents in the last 10 s: 998 opened, 3 need approval"
    )
    assert f"{PUBLIC}/console/incidents/inc-250" in digest["message"]
    assert "1 incident in the last 10 s: 1 need approval" in duty.bodies[-1]["title"]


# A throwaway self-signed certificate on loopback: not verifying it is the point.
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
async def test_teams_gets_an_adaptive_card_as_microsoft_documents_it(tmp_path):
    """Apprise's Teams plugin (Power Automate workflows), the one Teams plugin that takes a
    host of our choosing: the message is an Adaptive Card inside a `message` activity
    (learn.microsoft.com, "Create incoming webhooks with Workflows for Microsoft Teams")."""
    with tls_json_receiver(tmp_path) as teams:
        url = f"workflows://127.0.0.1:{teams.port}/wf123/sig456?verify=no"
        pager = notifier(tmp_path, [url], Facts())
        trail(tmp_path / "audit.jsonl", [("inc-teams", "step.planned",
                                           {"step": "s1", "awaiting_approval": True})])  # fmt: skip
        await deliver_all(pager)
    [payload] = teams.bodies
    assert teams.paths[0].startswith("/workflows/wf123/triggers/manual/paths/invoke")
    assert payload["type"] == "message"
    [attachment] = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and isinstance(card["body"], list)
    text = json.dumps(card["body"])
    assert "inc-teams" in text
    assert f"{PUBLIC}/console/incidents/inc-teams" in text


# Slack's incoming-webhook payload (docs.slack.dev, "Sending messages using incoming
# webhooks" and "Reference: secondary message attachments"): what a message may carry at
# the top level, and what a legacy attachment may carry.
SLACK_MESSAGE_FIELDS = {"text", "blocks", "attachments", "thread_ts", "mrkdwn", "username",
                        "icon_url", "icon_emoji", "channel"}  # fmt: skip
SLACK_ATTACHMENT_FIELDS = {
    "fallback", "color", "pretext", "author_name", "author_link", "author_icon", "title",
    "title_link", "text", "fields", "image_url", "thumb_url", "footer", "footer_icon", "ts",
    "mrkdwn_in", "blocks",
}  # fmt: skip


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
async def test_slack_gets_an_incoming_webhook_message_as_slack_documents_it(tmp_path, monkeypatch):
    """Apprise's own Slack plugin renders the page. It posts only to hooks.slack.com, so
    this test points the plugin's base URL at a loopback HTTPS receiver (nothing else of
    the plugin is changed); the receiver answers "ok", as Slack's webhooks do."""
    with tls_json_receiver(tmp_path) as slack:
        slack.reply = b"ok"
        monkeypatch.setattr(NotifySlack, "webhook_url", f"https://127.0.0.1:{slack.port}/services")
        url = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7/?verify=no"
        pager = notifier(tmp_path, [url], Facts())
        trail(tmp_path / "audit.jsonl", [("inc-slack", "step.planned",
                                           {"step": "s1", "awaiting_approval": True})])  # fmt: skip
        await deliver_all(pager)
        [channel] = channels_of([url])
        assert pager.counted.labels(channel=channel.name, outcome="delivered")._value.get() == 1
    [payload] = slack.bodies
    assert slack.paths == ["/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"]
    assert slack.content_types[0].startswith("application/json")
    assert set(payload) <= SLACK_MESSAGE_FIELDS, set(payload) - SLACK_MESSAGE_FIELDS
    [attachment] = payload["attachments"]
    assert set(attachment) <= SLACK_ATTACHMENT_FIELDS, set(attachment) - SLACK_ATTACHMENT_FIELDS
    assert re.fullmatch(r"#[0-9A-Fa-f]{6}", attachment["color"])
    assert "inc-slack" in attachment["title"]
    assert f"{PUBLIC}/console/incidents/inc-slack" in attachment["text"]
    assert "set rtu-e01 to local_manual; was remote" in attachment["text"]


async def test_the_running_notifier_outlasts_a_channel_that_is_down(tmp_path):
    """The worker's task: a failing channel is retried with backoff and never ends the
    task (a part that ends would stop the worker)."""
    with json_receiver() as hook:
        hook.status = 500
        pager = notifier(tmp_path, [f"json://127.0.0.1:{hook.port}/page"])
        name = f"json://127.0.0.1:{hook.port}"
        task = asyncio.ensure_future(pager.run())
        try:
            trail(tmp_path / "audit.jsonl", [("inc-1", "step.failed", {"step": "s1"})])
            for _ in range(100):
                if pager.counted.labels(channel=name, outcome="failed")._value.get() >= 2:
                    break
                await asyncio.sleep(0.05)
            assert not task.done()
            hook.status = 200
            for _ in range(100):
                if hook.bodies:
                    break
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert len(hook.bodies) == 1 and "Step failed" in hook.bodies[0]["title"]
    assert pager.counted.labels(channel=name, outcome="failed")._value.get() >= 2


async def test_two_workers_on_one_state_dir_page_once_and_the_second_takes_over(tmp_path):
    """Workers sharing a state dir share the trail, the queues and the reminders: one
    notifies, the other stands by (events/leader.py) until the first stops."""

    async def until_bodies(hook: Any, count: int) -> None:
        for _ in range(200):
            if len(hook.bodies) >= count:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # time for a second copy, were one coming

    with json_receiver() as hook, capture_logs() as logged:
        urls = [f"duty=json://127.0.0.1:{hook.port}/page"]
        first, second = notifier(tmp_path, urls, Facts()), notifier(tmp_path, urls, Facts())
        tasks = [asyncio.ensure_future(first.run()), asyncio.ensure_future(second.run())]
        try:
            trail(tmp_path / "audit.jsonl", [("inc-1", "step.failed", {"step": "s1"})])
            await until_bodies(hook, 1)
            assert len(hook.bodies) == 1
            tasks[0].cancel()  # the first worker stops
            with contextlib.suppress(asyncio.CancelledError):
                await tasks[0]
            trail(tmp_path / "audit.jsonl", [("inc-2", "step.failed", {"step": "s1"})])
            await until_bodies(hook, 2)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    assert [b["title"] for b in hook.bodies] == [
        "[Bulkhead] Step failed: incident inc-1",
        "[Bulkhead] Step failed: incident inc-2",
    ]
    # Nothing is left waiting in either (a worker that queued a message the other then
    # delivered would retry a file that is gone, for ever).
    name = first.channels[0].name
    assert first.outbox.depth(name) == second.outbox.depth(name) == 0
    # Nor did they trip over each other's files (the same message written and delivered
    # by both: a rename that lost its file, a queued file already gone).
    assert [e["event"] for e in logged if e["log_level"] in ("error", "warning")] == []
    assert "notify.standing_by" in [e["event"] for e in logged]
