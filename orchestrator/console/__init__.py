"""The responder web console (/console): incidents, approvals, live updates, audit."""

from orchestrator.console.routes import router

__all__ = ["router"]
