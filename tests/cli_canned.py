"""A stand-in for Bulkhead's API that the CLI error tests talk to.

A real uvicorn serves a small FastAPI app with Bulkhead's own problem handlers
(orchestrator.api.problems), so the problem+json documents the CLI parses, including
FastAPI's request-validation errors, are the ones the real API produces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.api.city import EXAMPLE as CITY_EXAMPLE
from orchestrator.api.problems import Problem, install
from orchestrator.cli.main import main

EXAMPLE = (
    Path(__file__).resolve().parents[1] / "examples/findings/traffic-controller-compromise.json"
)
UNPROCESSABLE = HTTPStatus(422).phrase  # "Unprocessable Content" from Python 3.13 on
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="bulkhead"'}
STEP = {
    "id": "a",
    "adapter": "modbus",
    "action": "set",
    "target": {"device": "tsc-0001"},
    "state": "verified",
    "approvals": [],
    "required_approvals": 0,
}
INCIDENT = {
    "incident_id": "inc-1",
    "status": "contained",
    "entity": "device:tsc-0001",
    "findings": [],
    "steps": [STEP, {**STEP, "id": "b"}, {**STEP, "id": "c"}],
    "audit": [],
}

# What GET /v1/incidents/inc-1/release-preview answers (orchestrator.responders.undo).
RELEASE_PREVIEW = {
    "incident_id": "inc-1",
    "step_id": None,
    "reverts": [],
    "quarantines": [],
    "stays": [],
    "cancels": [],
    "summary": "nothing to undo",
}


class Extend(BaseModel):
    """The API's extend body (orchestrator.responders.bodies.ExtendBody): at most 7 days."""

    model_config = ConfigDict(extra="forbid")
    lease_s: int = Field(gt=0, le=7 * 24 * 3600)
    reason: str = ""


@dataclass
class Seen:
    method: str
    path: str
    authorization: str | None
    body: bytes


@dataclass
class CannedApi:
    """What each test tells the stand-in API to answer, and every request it received."""

    url: str = ""
    answers: dict[tuple[str, str], Problem | Any] = field(default_factory=dict)
    default: Problem | Any = None
    seen: list[Seen] = field(default_factory=list)

    def answer(self, method: str, path: str, with_: Problem | Any) -> None:
        self.answers[(method, path)] = with_

    def reply(self, method: str, path: str) -> Any:
        canned = self.answers.get((method, path), self.default)
        if canned is None:
            raise Problem(404, f"no route for {method} {path}")
        if isinstance(canned, Problem):
            raise canned
        return canned  # JSON, or a Response standing for some other server's answer


def canned_app(api: CannedApi) -> FastAPI:
    app = FastAPI()
    install(app)

    @app.middleware("http")
    async def record(request: Request, call_next: Any) -> Any:
        api.seen.append(
            Seen(
                request.method,
                request.url.path,
                request.headers.get("authorization"),
                await request.body(),
            )
        )
        return await call_next(request)

    @app.post("/v1/incidents/{incident_id}/steps/{step_id}/extend")
    def extend(incident_id: str, step_id: str, body: Extend, request: Request) -> Any:
        return api.reply(request.method, request.url.path)

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    def anything(request: Request) -> Any:
        return api.reply(request.method, request.url.path)

    return app


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, list[str]]:
    """`bulkhead ARGV`: exit code, stdout, stderr lines; no traceback, whatever happened."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err.splitlines()


def against(api: CannedApi, state_dir: Path, *argv: str, bearer: str | None = "tok") -> list[str]:
    flags = ["--api-url", api.url, "--state-dir", str(state_dir)]
    return [*argv, *flags, *(["--token", bearer] if bearer else [])]


CITY = CITY_EXAMPLE  # GET /v1/city, as the API documents it
READS = [("incidents", "ls"), ("incidents", "show", "inc-1"), ("status",)]
WRITES = [
    ("approve", "inc-1", "a", "--reason", "confirmed"),
    ("deny", "inc-1", "a", "--reason", "false positive"),
    ("extend", "inc-1", "a", "--lease", "15m"),
    ("release", "inc-1", "--reason", "reflashed"),
    ("automation", "pause", "--reason", "drill"),
    ("automation", "resume", "--reason", "drill over"),
]
