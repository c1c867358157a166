"""Automation paused or resumed pages duty with who and why; the first look only places
the watch, and a record that cannot be read now is read again later."""

from __future__ import annotations

from pathlib import Path

from notify_receivers import json_receiver
from prometheus_client import CollectorRegistry

from contracts.city import CityView
from orchestrator.notify.automation import AutomationWatch
from orchestrator.notify.channels import channels_of
from orchestrator.notify.lookup import NoFacts
from orchestrator.notify.notices import Kind
from orchestrator.notify.notifier import Notifier
from orchestrator.policy.embedded import EmbeddedEngine

POLICIES = Path(__file__).resolve().parents[3] / "policies"


class City:
    def __init__(self) -> None:
        self.now: CityView | None = CityView(paused=False)

    async def view(self) -> CityView:
        if self.now is None:
            raise RuntimeError("Temporal is not answering")
        return self.now


async def test_pause_and_resume_are_each_told_once_with_who_and_why(tmp_path) -> None:
    city = City()
    watch = AutomationWatch(city)
    assert await watch.check() is None  # where it starts
    city.now = CityView(paused=True, changed_by="dora", reason="storm", changed_at="t1")
    paused = await watch.check()
    assert paused is not None and paused.kind == Kind.AUTOMATION_PAUSED
    assert paused.reason == "by dora: storm"
    assert await watch.check() is None  # still paused: nothing new
    city.now = None
    assert await watch.check() is None  # unreadable: no guess
    city.now = CityView(paused=False, changed_by="dora", reason="over", changed_at="t2")
    resumed = await watch.check()
    assert resumed is not None and resumed.kind == Kind.AUTOMATION_RESUMED

    with json_receiver() as duty:
        pager = Notifier(
            audit_path=tmp_path / "audit.jsonl",
            state_dir=tmp_path,
            channels=channels_of([f"duty=json://127.0.0.1:{duty.port}/page"]),
            engine=EmbeddedEngine(POLICIES),
            lookup=NoFacts(),
            public_url="https://bulkhead.city.example",
            registry=CollectorRegistry(),
        )
        pager.prepare()
        await pager.tell(paused, {})
        await pager.drain(pager.channels[0])
    [page] = duty.bodies
    assert page["title"] == "[Bulkhead] Automation paused by dora: storm"
    assert "https://bulkhead.city.example/console" in page["message"]
