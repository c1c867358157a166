"""Console fixtures: the real app under uvicorn, a worker, and Debian's chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from harness import make_settings, running_worker, serving
from playwright.async_api import Browser, async_playwright
from temporalio.client import Client
from workflow_fakes import ScriptedEngine, scripted_activities

from orchestrator.api.app import create_app
from orchestrator.api.context import build_context
from orchestrator.config import DEFAULT_POLICY_DIR, Settings
from orchestrator.lab.traffic import TrafficLab
from orchestrator.policy.embedded import EmbeddedEngine
from orchestrator.responders.principals import PrincipalStore
from orchestrator.temporal.city import TemporalCity
from orchestrator.wiring.worker import build_activities

PEOPLE = {
    "alice": ["responder"],
    "bob": ["responder"],
    "dora": ["duty-officer"],
    "vic": ["viewer"],
}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def rego() -> EmbeddedEngine:
    """The shipped approval policy decides who may act (decisions come from a script)."""
    return EmbeddedEngine(DEFAULT_POLICY_DIR)


def add_people(settings: Settings) -> dict[str, str]:
    store = PrincipalStore(settings.principals_path)
    return {name: store.add(name, roles) for name, roles in PEOPLE.items()}


def console_app(client: Client, settings: Settings, engine: Any) -> FastAPI:
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    return create_app(build_context(settings, client, engine, secret))


# What a browser's navigation asks for: the console answers it with pages and redirects.
BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def asgi(app: FastAPI, base_url: str = "http://bulkhead.test") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=base_url, headers=BROWSER
    )


async def end_incidents(client: Client, settings: Settings) -> None:
    """Terminate this test's incidents: with their worker gone, every later incident list
    would wait out a query timeout on each of them."""
    query = f"TaskQueue = '{settings.task_queue}' AND ExecutionStatus = 'Running'"
    async for execution in client.list_workflows(query):
        await client.get_workflow_handle(execution.id).terminate("test over")


@dataclass
class Stack:
    settings: Settings
    tokens: dict[str, str]
    url: str
    app: FastAPI


StartStack = Callable[..., AbstractAsyncContextManager[Stack]]


@pytest.fixture
def console_stack(temporal_client: Client, traffic_lab: TrafficLab, rego) -> StartStack:
    """Start worker + app + server. Decisions are `steps` when given, else the shipped
    policy's; steps run on the lab's controllers; the shipped policy authorizes. Keyword
    arguments override settings (a lab server's port, say)."""

    @asynccontextmanager
    async def start(steps: list[dict[str, Any]] | None, **overrides: Any) -> AsyncIterator[Stack]:
        settings = make_settings(traffic_lab.port, **overrides)
        people = add_people(settings)
        city = TemporalCity(temporal_client, settings)
        activities = (
            build_activities(settings, city)
            if steps is None
            else scripted_activities(settings, ScriptedEngine(steps))
        )
        app = console_app(temporal_client, settings, rego)
        try:
            async with running_worker(temporal_client, settings, activities), serving(app) as url:
                await city.ensure()  # the shipped policy reads the kill switch from it
                yield Stack(settings, people, url, app)
        finally:
            await end_incidents(temporal_client, settings)

    return start


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Debian's chromium, headless; Playwright never downloads a browser here."""
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()
