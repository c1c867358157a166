"""Fixtures of the CLI error tests: the canned API, and no BULKHEAD_* from the developer."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
import uvicorn
from cli_canned import CITY, INCIDENT, RELEASE_PREVIEW, CannedApi, canned_app
from conftest import free_port


@pytest.fixture(scope="module")
def server() -> Iterator[CannedApi]:
    api = CannedApi()
    port = free_port()
    config = uvicorn.Config(
        canned_app(api), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    for _ in range(250):
        if uv.started:
            break
        thread.join(0.02)
    assert uv.started, "uvicorn did not start"
    api.url = f"http://127.0.0.1:{port}"
    try:
        yield api
    finally:
        uv.should_exit = True
        thread.join(10)


@pytest.fixture
def api(server: CannedApi) -> CannedApi:
    server.answers.clear()
    server.seen.clear()
    server.default = None
    server.answer("GET", "/v1/incidents", {"incidents": []})
    server.answer("GET", "/v1/incidents/inc-1", INCIDENT)
    server.answer("GET", "/v1/incidents/inc-1/release-preview", RELEASE_PREVIEW)
    server.answer("GET", "/v1/city", CITY)
    return server


@pytest.fixture(autouse=True)
def no_bulkhead_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own BULKHEAD_TOKEN or config must not decide these tests."""
    for name in list(os.environ):
        if name.startswith("BULKHEAD_"):
            monkeypatch.delenv(name)
