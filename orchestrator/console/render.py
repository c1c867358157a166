"""Jinja templates (autoescaped) and the headers every console response carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from orchestrator.console import timeline, views
from orchestrator.responders import times

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

# Everything is served from here: no CDN, no inline script or style, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters.update(
    when=times.utc,  # UTC, to the second, labelled: as the CLI shows times
    epoch_ms=views.epoch_ms,
    compact=views.compact,
    severity_name=views.severity_name,
    label=views.label,
    duration=timeline.duration,
)


def fragment(template: str, **context: Any) -> str:
    return env.get_template(template).render(**context)


def page(template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(fragment(template, **context), status_code=status, headers=SECURITY_HEADERS)
