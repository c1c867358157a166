"""Hot reload of the embedded engine: good changes serve, broken ones are rejected and logged,
and the previous version keeps deciding meanwhile."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from contracts.decision import DecideRequest, Verdict
from contracts.findings import Finding
from orchestrator.config import DEFAULT_POLICY_DIR, REPO_ROOT
from orchestrator.policy import reload as reload_module
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.policy.input import containment_input
from orchestrator.policy.models import AuthorizationInput
from orchestrator.policy.reload import reload_once, watch
from orchestrator.wiring.inventory import Inventory

EXAMPLE = REPO_ROOT / "examples" / "findings" / "traffic-controller-compromise.json"
CONTAINMENT = Path("bulkhead") / "containment" / "containment.rego"


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DEFAULT_POLICY_DIR, tmp_path / "policies"))


def demo_lease(engine: EmbeddedEngine) -> int | None:
    """The lease of the demo's single step, as the engine decides it right now."""
    finding = Finding.model_validate(json.loads(EXAMPLE.read_text()))
    request = DecideRequest(incident_id="inc-tsc-0001", findings=[finding])
    decision = engine.decide(containment_input(request, Inventory(engine.bundle.data["inventory"])))
    assert decision.verdict is Verdict.CONTAIN, decision.reasons
    (step,) = decision.steps
    return step.lease_s


def set_fallback_lease(policies: Path, seconds: int) -> None:
    """Change the fallback lease, and the cases that pin it, in one consistent edit."""
    path = policies / "data" / "guardrails.json"
    data = json.loads(path.read_text())
    data["lease_s"]["fallback"] = seconds
    path.write_text(json.dumps(data))
    for case_path in (policies / "cases").glob("*.json"):
        case = json.loads(case_path.read_text())
        for step in case["expected"]["steps"]:
            if step["id"].startswith("fallback:"):
                step["lease_s"] = seconds
        case_path.write_text(json.dumps(case))


def break_syntax(policies: Path) -> None:
    path = policies / CONTAINMENT
    path.write_text(path.read_text() + "\nbroken := {\n")


async def test_unchanged_directory_is_not_reloaded(policies):
    engine = EmbeddedEngine(policies)
    loaded_at = engine.status().loaded_at
    assert await reload_once(engine) == "unchanged"
    assert engine.status().loaded_at == loaded_at


async def test_consistent_change_is_loaded_and_decides_from_then_on(policies):
    engine = EmbeddedEngine(policies)
    before = engine.version
    set_fallback_lease(policies, 600)
    assert await reload_once(engine) == "loaded"
    assert engine.version != before
    assert demo_lease(engine) == 600
    assert engine.status().last_rejection is None


async def test_syntax_error_is_rejected_and_the_old_version_keeps_serving(policies):
    engine = EmbeddedEngine(policies)
    before = engine.version
    break_syntax(policies)
    assert await reload_once(engine) == "rejected"
    assert engine.version == before
    assert demo_lease(engine) == 3600
    rejection = engine.status().last_rejection
    assert rejection is not None
    assert rejection.reason.startswith("compile: bulkhead/containment/containment.rego:")


async def test_change_that_fails_a_rego_test_is_rejected_naming_the_test(policies):
    engine = EmbeddedEngine(policies)
    approval = policies / "bulkhead" / "approval" / "approval.rego"
    approval.write_text(
        approval.read_text().replace(
            '{"duty-officer", "admin"}', '{"duty-officer", "admin", "viewer"}'
        )
    )
    assert await reload_once(engine) == "rejected"
    reason = engine.last_rejection.reason
    assert reason.startswith("rego tests: failing: ")
    assert "data.bulkhead.approval_test.test_viewer_never_mutates_anything (fail)" in reason
    viewer = {"action": "pause", "principal": {"name": "vic", "roles": ["viewer"]}, "step": None}
    assert not engine.authorize(AuthorizationInput.model_validate(viewer)).allow


async def test_change_that_breaks_a_case_is_rejected(policies):
    engine = EmbeddedEngine(policies)
    path = policies / "data" / "guardrails.json"
    data = json.loads(path.read_text())
    data["lease_s"]["fallback"] = 60  # the cases still say 3600
    path.write_text(json.dumps(data))
    assert await reload_once(engine) == "rejected"
    assert "cases/traffic-controller-compromise.json" in engine.last_rejection.reason
    assert demo_lease(engine) == 3600


async def test_invalid_data_is_rejected(policies):
    engine = EmbeddedEngine(policies)
    path = policies / "data" / "inventory.json"
    data = json.loads(path.read_text())
    data["assets"]["tsc-0001"]["zone"] = "harbour"
    path.write_text(json.dumps(data))
    assert await reload_once(engine) == "rejected"
    assert "unknown zone 'harbour'" in engine.last_rejection.reason


async def test_unparseable_json_is_rejected(policies):
    engine = EmbeddedEngine(policies)
    (policies / "data" / "guardrails.json").write_text('{"severity": ')
    assert await reload_once(engine) == "rejected"
    assert "guardrails.json" in engine.last_rejection.reason


async def test_removed_directory_is_rejected_and_the_old_version_serves(policies):
    engine = EmbeddedEngine(policies)
    shutil.rmtree(policies)
    assert await reload_once(engine) == "rejected"
    assert "does not exist" in engine.last_rejection.reason
    assert demo_lease(engine) == 3600


async def test_a_rejected_tree_is_not_checked_again_until_it_changes(policies, monkeypatch):
    engine = EmbeddedEngine(policies)
    break_syntax(policies)
    assert await reload_once(engine) == "rejected"
    calls = []
    monkeypatch.setattr(reload_module, "_candidate", calls.append)
    assert await reload_once(engine) == "unchanged"
    assert calls == []


async def test_fixing_a_rejected_change_loads_it_and_clears_the_rejection(policies):
    engine = EmbeddedEngine(policies)
    original = (policies / CONTAINMENT).read_text()
    break_syntax(policies)
    assert await reload_once(engine) == "rejected"
    (policies / CONTAINMENT).write_text(original)
    set_fallback_lease(policies, 900)
    assert await reload_once(engine) == "loaded"
    assert engine.last_rejection is None
    assert demo_lease(engine) == 900


async def test_only_tests_changing_revalidates_without_changing_the_version(policies):
    engine = EmbeddedEngine(policies)
    before = engine.version
    extra = policies / "bulkhead" / "lib" / "extra_test.rego"
    extra.write_text("package bulkhead.lib_test\n\ntest_extra if true\n")
    assert await reload_once(engine) == "loaded"
    assert engine.version == before  # tests are not part of what decides


async def test_watcher_picks_up_a_change_in_the_background(policies):
    engine = EmbeddedEngine(policies)
    task = asyncio.create_task(watch(engine, interval_s=0.05))
    try:
        set_fallback_lease(policies, 1200)
        for _ in range(200):
            if demo_lease(engine) == 1200:
                break
            await asyncio.sleep(0.05)
        assert demo_lease(engine) == 1200
        break_syntax(policies)
        for _ in range(200):
            if engine.last_rejection is not None:
                break
            await asyncio.sleep(0.05)
        assert engine.last_rejection is not None
        assert demo_lease(engine) == 1200
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_watcher_survives_an_unexpected_error(policies, monkeypatch):
    engine = EmbeddedEngine(policies)
    failures = []

    async def exploding(_engine):
        failures.append(1)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(reload_module, "reload_once", exploding)
    task = asyncio.create_task(watch(engine, interval_s=0.01))
    try:
        for _ in range(100):
            if len(failures) >= 3:
                break
            await asyncio.sleep(0.01)
        assert len(failures) >= 3
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
