"""The HTTP fallback adapter against the lab's real city-service HTTP simulator."""

from __future__ import annotations

import httpx
import pytest
from conftest import free_port

from adapters.base import PermanentAdapterError, TransientAdapterError
from adapters.secrets import SecretRef
from adapters.service.http import (
    HttpCall,
    HttpFallbackAdapter,
    HttpSwitch,
    SecretHeader,
    _excerpt,
    json_at,
    render,
)
from contracts.adapter import StepCommand
from orchestrator.lab.cityservice import CityServiceLab

ENV_VAR = "BH_TEST_TRAM_TOKEN"
MODES = {"normal": "normal", "degraded": "degraded"}


def tram(base_url: str, **overrides) -> HttpSwitch:
    fields = {
        "asset": "tram-ops-01",
        "modes": MODES,
        "read": HttpCall("GET", f"{base_url}/tram/mode", path="mode"),
        "apply": HttpCall("PUT", f"{base_url}/tram/mode", body={"mode": "{mode}"}),
        "headers": {"Authorization": SecretHeader(SecretRef(env=ENV_VAR), "Bearer ")},
        "safe_mode": "degraded",
    }
    return HttpSwitch(**{**fields, **overrides})


def adapter(base_url: str, *, keep: bool = False, **overrides) -> HttpFallbackAdapter:
    return HttpFallbackAdapter(
        {"tram-ops-01": tram(base_url, **overrides)}, timeout_s=1.0, keep_connections=keep
    )


def command(mode: str | None = "degraded") -> StepCommand:
    return StepCommand(
        incident_id="inc-1",
        step_id="fallback",
        adapter="http",
        action="set",
        target={"asset": "tram-ops-01"},
        args={} if mode is None else {"mode": mode},
    )


@pytest.fixture(autouse=True)
def token(city: CityServiceLab, monkeypatch) -> str:
    monkeypatch.setenv(ENV_VAR, city.token)
    return city.token


@pytest.mark.parametrize("keep", [False, True], ids=["per-call", "kept-pool"])
async def test_apply_verify_rollback_restores_the_previous_mode(city, keep):
    async with adapter(city.url, keep=keep) as http:
        plan = await http.plan(command())
        assert plan.before == {"mode": "normal", "value": "normal"}
        receipt = await http.apply(command(), key="inc-1:fallback")
        assert city.modes["tram"] == "degraded"
        assert (await http.verify(receipt)).ok
        undone = await http.rollback(receipt)
        assert city.modes["tram"] == "normal"
        verification = await http.verify(undone)
    assert verification.ok
    assert verification.observed == {"mode": "normal", "value": "normal"}
    assert city.writes["tram"] == 2


async def test_a_second_apply_sends_nothing(city):
    http = adapter(city.url)
    await http.apply(command(), key="k")
    again = await http.apply(command(), key="k")
    assert city.writes["tram"] == 1
    assert again.detail == "already in mode, nothing sent"


async def test_a_mode_outside_the_configured_set_is_refused_and_nothing_sent(city):
    # line_of_sight exists on the service, but this switch does not allow it.
    with pytest.raises(PermanentAdapterError, match=r"'line_of_sight' is not allowed"):
        await adapter(city.url).apply(command("line_of_sight"), key="k")
    assert city.writes["tram"] == 0


async def test_a_wrong_token_is_permanent_and_never_shown(city, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "not-the-token-0123456789")
    with pytest.raises(PermanentAdapterError, match="answered 401") as refused:
        await adapter(city.url).apply(command(), key="k")
    message = str(refused.value)
    assert "not-the-token-0123456789" not in message
    assert city.token not in message
    assert "Bearer" not in message
    assert "missing or invalid bearer token" in message  # the body excerpt
    assert city.modes["tram"] == "normal"


async def test_a_value_the_service_rejects_is_permanent_with_its_reason(city):
    http = adapter(city.url, modes={"normal": "normal", "degraded": "crawl"})
    with pytest.raises(PermanentAdapterError, match=r"answered 422: .*'crawl' is not one of"):
        await http.apply(command(), key="k")


async def test_server_down_is_transient_and_a_retry_after_it_is_back_succeeds(city):
    async with adapter(city.url, keep=True) as http:
        await http.plan(command())  # a pooled connection is open when the service goes
        await city.stop()
        with pytest.raises(TransientAdapterError, match="ConnectError"):
            await http.apply(command(), key="k")
        await city.start()
        receipt = await http.apply(command(), key="k")
        assert (await http.verify(receipt)).ok
    assert city.writes["tram"] == 1


async def test_a_5xx_is_transient(city):
    city.fail_status = 503
    with pytest.raises(TransientAdapterError, match="answered 503"):
        await adapter(city.url).apply(command(), key="k")


async def test_a_slow_service_times_out_as_transient(city):
    city.delay_s = 0.5
    http = HttpFallbackAdapter({"tram-ops-01": tram(city.url)}, timeout_s=0.1)
    with pytest.raises(TransientAdapterError, match="timed out"):
        await http.apply(command(), key="k")


async def test_nothing_listening_is_transient():
    http = adapter(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TransientAdapterError, match="failed: ConnectError"):
        await http.apply(command(), key="k")


async def test_verify_fails_when_the_service_reports_another_mode(city):
    http = adapter(city.url)
    receipt = await http.apply(command(), key="k")
    city.modes["tram"] = "line_of_sight"  # someone else switched it meanwhile
    verification = await http.verify(receipt)
    assert not verification.ok
    assert verification.observed == {"mode": "unknown('line_of_sight')", "value": "line_of_sight"}


async def test_verify_fails_when_the_answer_has_no_mode_there(city):
    http = adapter(city.url, verify=HttpCall("GET", f"{city.url}/healthz", path="mode"))
    receipt = await http.apply(command(), key="k")
    verification = await http.verify(receipt)
    assert not verification.ok
    assert "no 'mode' in the response" in verification.detail


async def test_an_inventory_record_builds_a_switch_against_the_lab(city, tmp_path):
    (tmp_path / "tram-token").write_text(city.token + "\n")
    record = {
        "base_url": "lab",
        "headers": {"Authorization": {"secret_file": "tram-token", "prefix": "Bearer "}},
        "read": {"url": "/tram/mode", "path": "mode"},
        "apply": {"method": "put", "url": "/tram/mode", "body": {"mode": "{mode}"}},
    }
    switch = HttpSwitch.from_config(
        "tram-ops-01",
        record,
        modes=MODES,
        safe_mode="degraded",
        lab_url=city.url,
        secrets_base=tmp_path,
    )
    assert switch.apply == HttpCall("PUT", f"{city.url}/tram/mode", {"mode": "{mode}"})
    http = HttpFallbackAdapter({"tram-ops-01": switch})
    receipt = await http.apply(command(None), key="k")
    assert receipt.after == {"mode": "degraded", "value": "degraded"}
    assert city.modes["tram"] == "degraded"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"apply": {"url": "/m"}}, "needs both a read and an apply"),
        ({"read": {"url": "/m"}, "apply": {"url": "/m"}}, "JSON path of the mode"),
        ({"read": {"path": "m"}, "apply": {"url": "/m"}}, "needs at least a url"),
        (
            {"read": {"url": "/m", "path": "m"}, "apply": {"url": "/m"}, "headers": {"X": 1}},
            "headers.X is neither text nor a secret",
        ),
    ],
)
def test_a_record_that_cannot_work_is_refused_when_built(record, message):
    with pytest.raises(ValueError, match=message):
        HttpSwitch.from_config("tram-ops-01", record, modes=MODES, lab_url="http://lab")


def test_the_body_template_keeps_the_json_type_of_a_whole_placeholder():
    template = {"mode": "{mode}", "note": "switch to {mode}", "list": ["{mode}", 1]}
    assert render(template, value=True) == {
        "mode": True,
        "note": "switch to True",
        "list": [True, 1],
    }


def test_json_paths_walk_objects_and_lists():
    document = {"data": {"items": [{"state": "ok"}]}}
    assert json_at(document, "data.items.0.state") == "ok"
    assert json_at(document, "") == document
    with pytest.raises(LookupError):
        json_at(document, "data.items.1.state")


def test_a_body_excerpt_never_repeats_a_secret_the_request_carried():
    response = httpx.Response(403, text="token   abc123 is\nnot allowed " + "x" * 500)
    excerpt = _excerpt(response, ["abc123"])
    assert excerpt.startswith("token *** is not allowed")
    assert len(excerpt) <= 200
