"""The CLI's error paths: one line on stderr, a documented exit code, never a traceback.

The API side is a real uvicorn serving a small FastAPI app with Bulkhead's own problem
handlers (orchestrator.api.problems), so the problem+json documents the CLI parses,
including FastAPI's request-validation errors, are the ones the real API produces.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from conftest import free_port
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.api.problems import Problem, install
from orchestrator.cli import client, incidents, respond
from orchestrator.cli.main import main
from orchestrator.config import Settings, new_webhook_secret
from orchestrator.responders.operator import ensure_operator, operator_token

EXAMPLE = (
    Path(__file__).resolve().parents[2] / "examples/findings/traffic-controller-compromise.json"
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


class Extend(BaseModel):
    """The API's extend body (orchestrator.api.actions.ExtendBody): at most 7 days."""

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
    return server


@pytest.fixture(autouse=True)
def no_bulkhead_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own BULKHEAD_TOKEN or config must not decide these tests."""
    for name in list(os.environ):
        if name.startswith("BULKHEAD_"):
            monkeypatch.delenv(name)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, list[str]]:
    """`bulkhead ARGV`: exit code, stdout, stderr lines; no traceback, whatever happened."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err.splitlines()


def against(api: CannedApi, state_dir: Path, *argv: str, bearer: str | None = "tok") -> list[str]:
    flags = ["--api-url", api.url, "--state-dir", str(state_dir)]
    return [*argv, *flags, *(["--token", bearer] if bearer else [])]


READS = [("incidents", "ls"), ("incidents", "show", "inc-1")]
WRITES = [
    ("approve", "inc-1", "a", "--reason", "confirmed"),
    ("deny", "inc-1", "a", "--reason", "false positive"),
    ("extend", "inc-1", "a", "--lease", "15m"),
    ("release", "inc-1", "--reason", "reflashed"),
    ("automation", "pause", "--reason", "drill"),
    ("automation", "resume", "--reason", "drill over"),
]


# --- refusals (4xx) and failures (5xx) ---------------------------------------------------------


@pytest.mark.parametrize("argv", READS + WRITES)
def test_every_api_command_reports_a_refusal_alike_exit_4_one_line(api, tmp_path, capsys, argv):
    api.default = Problem(403, "viewer may not do that: viewers change nothing", slug="forbidden")
    api.answers.clear()
    code, _, err = run(capsys, *against(api, tmp_path, *argv))
    assert code == client.EXIT_REFUSED == 4
    assert err == ["error: 403 Forbidden: viewer may not do that: viewers change nothing"]


def test_a_401_names_where_the_rejected_token_came_from(api, tmp_path, capsys):
    api.answer(
        "POST",
        "/v1/incidents/inc-1/steps/a/approve",
        Problem(401, "unknown or revoked token", slug="unauthenticated", headers=CHALLENGE),
    )
    code, _, err = run(
        capsys, *against(api, tmp_path, "approve", "inc-1", "a", "--reason", "ok", bearer="stale")
    )
    assert code == client.EXIT_REFUSED
    assert err == ["error: 401 Unauthorized: unknown or revoked token (token from --token)"]


def test_a_stale_operator_credential_is_named_in_the_401(api, tmp_path, capsys):
    ensure_operator(Settings(state_dir=tmp_path))
    api.answer(
        "GET",
        "/v1/incidents",
        Problem(401, "unknown or revoked token", slug="unauthenticated", headers=CHALLENGE),
    )
    code, _, err = run(capsys, *against(api, tmp_path, "incidents", "ls", bearer=None))
    assert code == client.EXIT_REFUSED
    assert len(err) == 1
    assert f"local operator credential {tmp_path / 'operator-token'}" in err[0]


def test_an_unknown_step_lists_the_incidents_real_steps(api, tmp_path, capsys):
    api.answer(
        "POST",
        "/v1/incidents/inc-1/steps/fallback:tsc-9/approve",
        Problem(404, "incident inc-1 has no step 'fallback:tsc-9'", slug="unknown-step"),
    )
    code, _, err = run(
        capsys, *against(api, tmp_path, "approve", "inc-1", "fallback:tsc-9", "--reason", "ok")
    )
    assert code == client.EXIT_REFUSED
    assert err == [
        "error: 404 Not Found: incident inc-1 has no step 'fallback:tsc-9'",
        "  steps of inc-1: a, b, c",
    ]
    assert [s.method for s in api.seen] == ["POST", "GET"], "the steps come from a fresh read"


def test_an_unknown_incident_is_one_line_without_a_step_list(api, tmp_path, capsys):
    api.answer(
        "POST",
        "/v1/incidents/inc-9/steps/a/deny",
        Problem(404, "no incident 'inc-9'", slug="unknown-incident"),
    )
    code, _, err = run(capsys, *against(api, tmp_path, "deny", "inc-9", "a", "--reason", "no"))
    assert code == client.EXIT_REFUSED
    assert err == ["error: 404 Not Found: no incident 'inc-9'"]


def test_a_conflict_says_why_the_workflow_refused(api, tmp_path, capsys):
    api.answer(
        "POST",
        "/v1/incidents/inc-1/steps/a/approve",
        Problem(409, "alice already approved step a; a second person must", slug="conflict"),
    )
    code, _, err = run(capsys, *against(api, tmp_path, "approve", "inc-1", "a", "--reason", "x"))
    assert code == client.EXIT_REFUSED
    assert err == ["error: 409 Conflict: alice already approved step a; a second person must"]


def test_an_invalid_field_is_named_with_its_reason_under_the_summary(api, tmp_path, capsys):
    """8 days passes the CLI's duration check; the API's limit (7 days) answers 422."""
    code, _, err = run(capsys, *against(api, tmp_path, "extend", "inc-1", "a", "--lease", "8d"))
    assert code == client.EXIT_REFUSED
    assert err == [
        f"error: 422 {UNPROCESSABLE}: 1 invalid field(s)",
        "  /body/lease_s: Input should be less than or equal to 604800",
    ]


def test_send_names_each_invalid_field_of_a_rejected_payload(api, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BULKHEAD_WEBHOOK_SECRET", new_webhook_secret())
    api.answer(
        "POST",
        "/v1/webhooks/generic",
        Problem(
            422,
            "2 invalid field(s) in the generic payload",
            slug="invalid-finding",
            errors=[
                {"pointer": "/finding_info/uid", "detail": "Field required"},
                {"pointer": "/severity_id", "detail": "Input should be 0, 1, 2, 3, 4, 5, 6 or 99"},
            ],
        ),
    )
    argv = ["send", "generic", str(EXAMPLE), "--api-url", api.url, "--state-dir", str(tmp_path)]
    code, out, err = run(capsys, *argv)
    assert code == client.EXIT_REFUSED
    assert out == ""
    assert err == [
        f"error: 422 {UNPROCESSABLE}: 2 invalid field(s) in the generic payload",
        "  /finding_info/uid: Field required",
        "  /severity_id: Input should be 0, 1, 2, 3, 4, 5, 6 or 99",
    ]


def test_an_api_failure_exits_5(api, tmp_path, capsys):
    api.answer(
        "POST", "/v1/incidents/inc-1/release", Problem(500, "the incident could not apply release")
    )
    code, _, err = run(capsys, *against(api, tmp_path, "release", "inc-1", "--reason", "done"))
    assert code == client.EXIT_API_FAILED == 5
    assert err == ["error: 500 Internal Server Error: the incident could not apply release"]


def test_send_reports_a_503_with_when_to_retry(api, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BULKHEAD_WEBHOOK_SECRET", new_webhook_secret())
    api.answer(
        "POST",
        "/v1/webhooks/generic",
        Problem(
            503,
            "Temporal did not take the finding; nothing was recorded",
            slug="not-durable",
            headers={"Retry-After": "5"},
        ),
    )
    argv = ["send", "generic", str(EXAMPLE), "--api-url", api.url, "--state-dir", str(tmp_path)]
    code, _, err = run(capsys, *argv)
    assert code == client.EXIT_API_FAILED
    assert err == [
        "error: 503 Service Unavailable: Temporal did not take the finding; nothing was "
        "recorded (retry after 5 s)"
    ]


def test_an_answer_that_is_not_the_apis_is_an_api_failure(api, tmp_path, capsys):
    """A --api-url pointing at some other web server: no KeyError, no traceback."""
    api.answer("GET", "/v1/incidents", {"hello": "world"})
    code, _, err = run(capsys, *against(api, tmp_path, "incidents", "ls"))
    assert code == client.EXIT_API_FAILED
    assert err == [f"error: {api.url} answered without an incident list"]


def test_a_proxys_error_page_is_cut_to_one_line(api, tmp_path, capsys):
    page = "<html>\n<body>\n<h1>502 Bad Gateway</h1>\n" + "x" * 2000 + "</body>\n</html>\n"
    api.answer("GET", "/v1/incidents/inc-1", HTMLResponse(page, status_code=502))
    code, _, err = run(capsys, *against(api, tmp_path, "incidents", "show", "inc-1"))
    assert code == client.EXIT_API_FAILED
    assert len(err) == 1
    assert err[0].startswith("error: 502 Bad Gateway: <html> <body> <h1>502 Bad Gateway</h1>")
    assert len(err[0]) < 400


def test_a_page_that_is_not_json_is_an_api_failure(api, tmp_path, capsys):
    api.answer("GET", "/v1/incidents", HTMLResponse("<html>a router's login page</html>"))
    code, _, err = run(capsys, *against(api, tmp_path, "incidents", "ls"))
    assert code == client.EXIT_API_FAILED
    assert err == [
        f"error: {api.url}/v1/incidents answered 200 but not with JSON; "
        "is --api-url a Bulkhead API?"
    ]


# --- unreachable ------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [*READS, *WRITES, ("send", "generic", str(EXAMPLE))])
def test_every_api_command_reports_an_unreachable_api_alike_exit_3(
    tmp_path, capsys, monkeypatch, argv
):
    monkeypatch.setenv("BULKHEAD_WEBHOOK_SECRET", new_webhook_secret())
    monkeypatch.setenv("BULKHEAD_TOKEN", "tok")
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code, _, err = run(capsys, *argv, "--api-url", url, "--state-dir", str(tmp_path))
    assert code == client.EXIT_UNREACHABLE == 3
    assert len(err) == 1
    assert err[0].startswith(f"error: cannot reach {url}/v1/")
    assert "refused" in err[0].lower()


def test_an_api_that_never_answers_is_unreachable_after_the_timeout(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(incidents, "TIMEOUT_S", 0.3)
    with socket.socket() as listener:  # the kernel accepts the connection; nobody answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        code, _, err = run(capsys, "incidents", "ls", "--token", "t", "--api-url", url)
    assert code == client.EXIT_UNREACHABLE
    assert err == [f"error: cannot reach {url}/v1/incidents: no answer within 0.3 s"]


def test_a_write_that_timed_out_after_sending_says_it_may_still_take_effect(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(respond, "TIMEOUT_S", 0.3)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        argv = ["release", "inc-1", "--reason", "done", "--token", "t", "--api-url", url]
        code, _, err = run(capsys, *argv, "--state-dir", str(tmp_path))
    assert code == client.EXIT_UNREACHABLE
    assert err == [
        f"error: cannot reach {url}/v1/incidents/inc-1/release: no answer within 0.3 s "
        "(the request was sent: it may still take effect)"
    ]


def test_an_api_url_without_a_scheme_is_a_usage_error(tmp_path, capsys):
    argv = ["incidents", "show", "inc-1", "--token", "t", "--api-url", "127.0.0.1:8080"]
    code, _, err = run(capsys, *argv, "--state-dir", str(tmp_path))
    assert code == client.EXIT_USAGE
    assert len(err) == 1
    assert err[0].startswith("error: invalid API URL 127.0.0.1:8080")


# --- tokens -----------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", WRITES)
def test_a_write_without_a_token_exits_2_and_points_at_principals_add(api, tmp_path, capsys, argv):
    code, _, err = run(capsys, *against(api, tmp_path, *argv, bearer=None))
    assert code == client.EXIT_USAGE == 2
    assert len(err) == 1
    assert err[0].startswith("error: no token to ")
    assert "`bulkhead principals add" in err[0]
    assert api.seen == []


@pytest.mark.parametrize("argv", READS)
def test_a_read_without_any_token_exits_2_and_points_at_bulkhead_up(api, tmp_path, capsys, argv):
    code, _, err = run(capsys, *against(api, tmp_path, *argv, bearer=None))
    assert code == client.EXIT_USAGE
    assert len(err) == 1
    assert "BULKHEAD_TOKEN" in err[0]
    assert f"bulkhead up --state-dir {tmp_path}" in err[0]
    assert api.seen == []


@pytest.mark.parametrize("argv", WRITES)
def test_writes_never_use_the_local_operator_credential(api, tmp_path, capsys, argv):
    ensure_operator(Settings(state_dir=tmp_path))
    code, _, err = run(capsys, *against(api, tmp_path, *argv, bearer=None))
    assert code == client.EXIT_USAGE
    assert "the local operator credential only reads" in err[0]
    assert api.seen == [], "the viewer token was never sent"


@pytest.mark.parametrize("token", ["bh_caf\u00e9", "bh_two words", "bh_a\nb"])
def test_a_token_no_header_can_carry_is_a_usage_error_that_does_not_echo_it(
    api, tmp_path, capsys, monkeypatch, token
):
    monkeypatch.setenv("BULKHEAD_TOKEN", token)
    code, _, err = run(capsys, *against(api, tmp_path, "incidents", "ls", bearer=None))
    assert code == client.EXIT_USAGE
    assert err == [
        "error: the token from BULKHEAD_TOKEN or `token` setting is not a bearer token "
        "(RFC 6750: letters, digits and -._~+/ only); was it pasted with a space or a line break?"
    ]
    assert api.seen == []


def test_whitespace_around_a_token_is_not_part_of_it(api, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BULKHEAD_TOKEN", "  bh_abc\n")
    assert run(capsys, *against(api, tmp_path, "incidents", "ls", bearer=None))[0] == 0
    assert api.seen[0].authorization == "Bearer bh_abc"


@pytest.mark.parametrize("argv", READS)
def test_reads_fall_back_to_the_local_operator_credential(api, tmp_path, capsys, argv):
    settings = Settings(state_dir=tmp_path)
    ensure_operator(settings)
    code, _, _ = run(capsys, *against(api, tmp_path, *argv, bearer=None))
    assert code == 0
    assert [s.authorization for s in api.seen] == [f"Bearer {operator_token(settings)}"]


@pytest.mark.parametrize("argv", READS + WRITES)
def test_the_token_flag_beats_the_environment_which_beats_the_operator_credential(
    api, tmp_path, capsys, monkeypatch, argv
):
    ensure_operator(Settings(state_dir=tmp_path))
    api.default = STEP
    monkeypatch.setenv("BULKHEAD_TOKEN", "from-env")
    assert run(capsys, *against(api, tmp_path, *argv, bearer="from-flag"))[0] == 0
    assert run(capsys, *against(api, tmp_path, *argv, bearer=None))[0] == 0
    assert [s.authorization for s in api.seen] == ["Bearer from-flag", "Bearer from-env"]


@pytest.mark.parametrize("argv", [READS[0], WRITES[0]])
def test_the_token_setting_of_the_config_file_is_used(api, tmp_path, capsys, argv):
    ensure_operator(Settings(state_dir=tmp_path))
    config = tmp_path / "bulkhead.toml"
    config.write_text('token = "from-toml"\n')
    api.default = STEP
    code, _, _ = run(capsys, *against(api, tmp_path, *argv, "--config", str(config), bearer=None))
    assert code == 0
    assert [s.authorization for s in api.seen] == ["Bearer from-toml"]


# --- success still prints what it did ---------------------------------------------------------


def test_extend_sends_the_duration_in_seconds_and_prints_the_step(api, tmp_path, capsys):
    api.default = STEP
    argv = ("extend", "inc-1", "a", "--lease-s", "1h30m", "--reason", "vendor visit")
    code, out, err = run(capsys, *against(api, tmp_path, *argv))
    assert (code, err) == (0, [])
    assert "tsc-0001" in out
    assert b'"lease_s":5400' in api.seen[0].body


def test_show_prints_the_incident_read_with_the_token(api, tmp_path, capsys):
    code, out, err = run(capsys, *against(api, tmp_path, "incidents", "show", "inc-1"))
    assert (code, err) == (0, [])
    assert "inc-1" in out
    assert api.seen[0].authorization == "Bearer tok"


def test_field_errors_read_fastapis_own_loc_and_msg_shape_too():
    errors = [{"loc": ["body", "lease_s"], "msg": "Input should be greater than 0"}, "junk"]
    assert client.field_errors(errors) == ["/body/lease_s: Input should be greater than 0"]
