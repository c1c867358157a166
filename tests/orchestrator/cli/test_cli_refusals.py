"""The CLI's error paths: one line on stderr, a documented exit code, never a traceback.

Refusals (4xx), failures (5xx) and an unreachable API.
The API side is tests/cli_canned.py: real problem+json from Bulkhead's own handlers.
"""

from __future__ import annotations

import socket

import pytest
from cli_canned import (
    CHALLENGE,
    EXAMPLE,
    READS,
    UNPROCESSABLE,
    WRITES,
    against,
    run,
)
from conftest import free_port
from fastapi.responses import HTMLResponse

from orchestrator.api.problems import Problem
from orchestrator.cli import client, incidents, respond
from orchestrator.config import Settings, new_webhook_secret
from orchestrator.responders.operator import ensure_operator

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
        argv = ["approve", "inc-1", "a", "--reason", "ok", "--token", "t", "--api-url", url]
        code, _, err = run(capsys, *argv, "--state-dir", str(tmp_path))
    assert code == client.EXIT_UNREACHABLE
    assert err == [
        f"error: cannot reach {url}/v1/incidents/inc-1/steps/a/approve: no answer within 0.3 s "
        "(the request was sent: it may still take effect)"
    ]


def test_an_api_url_without_a_scheme_is_a_usage_error(tmp_path, capsys):
    argv = ["incidents", "show", "inc-1", "--token", "t", "--api-url", "127.0.0.1:8080"]
    code, _, err = run(capsys, *argv, "--state-dir", str(tmp_path))
    assert code == client.EXIT_USAGE
    assert len(err) == 1
    assert err[0].startswith("error: invalid API URL 127.0.0.1:8080")
