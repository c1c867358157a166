"""The CLI verifies TLS wherever a request can meet it; it skips loading the CA bundle
(a twentieth of a command's 0.5 s budget, #18) only for plain http without a proxy."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from orchestrator.cli import client


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keyword arguments of each httpx.request the CLI makes (answered 200 {})."""
    calls: list[dict[str, Any]] = []

    def fake(method: str, url: str, **kwargs: Any) -> httpx.Response:
        calls.append(kwargs)
        return httpx.Response(200, json={}, request=httpx.Request(method, url))

    monkeypatch.setattr(httpx, "request", fake)
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return calls


def test_an_https_api_is_verified(sent):
    client.request("GET", "https://bulkhead.example/v1/incidents", timeout_s=1)
    assert sent[0]["verify"] is True


def test_a_plain_http_api_needs_no_ca_bundle(sent):
    client.request("GET", "http://127.0.0.1:8080/v1/incidents", timeout_s=1)
    assert sent[0]["verify"] is False


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "https_proxy", "ALL_PROXY"])
def test_a_proxy_from_the_environment_is_verified_even_for_plain_http(sent, monkeypatch, variable):
    """The proxy itself may speak TLS (an https:// proxy URL)."""
    monkeypatch.setenv(variable, "https://proxy.example:3128")
    client.request("GET", "http://127.0.0.1:8080/v1/incidents", timeout_s=1)
    assert sent[0]["verify"] is True
