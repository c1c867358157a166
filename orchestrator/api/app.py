"""The FastAPI application: webhooks in, incidents out, problem+json for every error."""

from __future__ import annotations

from fastapi import FastAPI

from orchestrator.api import actions, health, incidents, policy, problems, webhooks
from orchestrator.api.context import ApiContext


def create_app(context: ApiContext) -> FastAPI:
    app = FastAPI(
        title="Bulkhead",
        version="0.1.0",
        summary="Policy-driven containment for city infrastructure",
    )
    app.state.context = context
    problems.install(app)
    app.include_router(health.router)
    app.include_router(webhooks.router)
    app.include_router(incidents.router)
    app.include_router(actions.router)
    app.include_router(policy.router)
    return app
