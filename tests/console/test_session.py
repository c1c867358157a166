"""Console sessions: login with a token, a signed HttpOnly SameSite=Strict cookie, CSRF on
every form, logout, revocation; the JSON API keeps answering problem+json."""

from __future__ import annotations

import json
import re
import stat
import threading
import time
from http.cookies import SimpleCookie

import httpx
import pytest
from fastapi import Request
from fastapi.responses import Response
from harness import make_settings
from temporalio.client import Client

from orchestrator.console.ended import ENDED_FILE, EndedSessions
from orchestrator.console.session import COOKIE, SECRET_FILE, Session, Sessions, console_secret
from orchestrator.ingest.raw_store import FileRawStore
from orchestrator.responders.principals import PrincipalStore

from .conftest import add_people, asgi, console_app

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
# A logged-in page that does not list every running incident (each list queries them all).
QUICK = "/console/incidents/inc-none"


def set_cookie(response: httpx.Response) -> SimpleCookie:
    cookie: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        cookie.load(header)
    return cookie


def csrf_of(response: httpx.Response) -> str:
    found = CSRF.search(response.text)
    assert found, response.text
    return found.group(1)


async def log_in(http: httpx.AsyncClient, token: str, next_url: str = "/console") -> httpx.Response:
    form = await http.get(f"/console/login?next={next_url}")
    return await http.post(
        "/console/login", data={"csrf": csrf_of(form), "token": token, "next": next_url}
    )


@pytest.fixture
def app(temporal_client: Client, rego):
    settings = make_settings(1)
    application = console_app(temporal_client, settings, rego)
    application.state.people = add_people(settings)
    application.state.settings = settings
    return application


async def test_pages_need_a_session_and_login_sets_a_hardened_cookie(app):
    async with asgi(app) as http:
        anonymous = await http.get("/console")
        form = await http.get("/console/login")
        refused = await http.post(
            "/console/login", data={"csrf": csrf_of(form), "token": "bh_nope", "next": "/console"}
        )
        logged_in = await log_in(http, app.state.people["alice"])
        home = await http.get("/console")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/console/login?next=%2Fconsole"
    anon_cookie = set_cookie(form)[COOKIE]
    assert anon_cookie["httponly"] and anon_cookie["samesite"].lower() == "strict"
    assert anon_cookie["path"] == "/console" and not anon_cookie["secure"]
    assert refused.status_code == 401 and "Unknown or revoked token" in refused.text
    assert "bh_nope" not in refused.text, "a token is never rendered back"
    assert logged_in.status_code == 303 and logged_in.headers["location"] == "/console"
    session_cookie = set_cookie(logged_in)[COOKIE]
    assert session_cookie.value != anon_cookie.value
    assert session_cookie["httponly"] and session_cookie["samesite"].lower() == "strict"
    assert home.status_code == 200 and "alice" in home.text
    assert app.state.people["alice"] not in home.text
    assert app.state.people["alice"] not in session_cookie.value
    assert "default-src 'none'" in home.headers["content-security-policy"]
    assert csrf_of(home) != csrf_of(form), "the CSRF token rotates at login"


async def test_cookie_is_secure_over_https(app):
    async with asgi(app, "https://bulkhead.test") as http:
        form = await http.get("/console/login")
    assert set_cookie(form)[COOKIE]["secure"]


async def test_login_without_its_csrf_token_is_refused(app):
    async with asgi(app) as http:
        await http.get("/console/login")
        missing = await http.post("/console/login", data={"token": app.state.people["alice"]})
        wrong = await http.post(
            "/console/login", data={"token": app.state.people["alice"], "csrf": "forged"}
        )
        home = await http.get("/console")
    assert missing.status_code == wrong.status_code == 403
    assert "did not come from the console" in missing.text
    assert home.status_code == 303, "no session came out of a forged login"


async def test_every_action_post_checks_the_csrf_token(app):
    async with asgi(app) as http:
        await log_in(http, app.state.people["dora"])
        page = await http.get(QUICK)
        url = "/console/incidents/inc-x/actions"
        form = {"action": "release", "reason": "forged"}
        missing = await http.post(url, data=form)
        wrong = await http.post(url, data={**form, "csrf": csrf_of(page)[:-2] + "xx"})
        logout_forged = await http.post("/console/logout", data={"csrf": "nope"})
        pause_forged = await http.post(
            "/console/automation", data={"action": "pause", "reason": "forged", "csrf": "nope"}
        )
    for response in (missing, wrong, pause_forged):
        assert response.status_code == 403
        assert "CSRF token does not match" in response.text
    assert logout_forged.status_code == 403


async def test_tampered_or_foreign_cookies_are_not_sessions(app):
    async with asgi(app) as http:
        await log_in(http, app.state.people["alice"])
        value = http.cookies[COOKIE]
        http.cookies.set(COOKIE, value[:-3] + "AAA", path="/console")
        tampered = await http.get(QUICK)
    assert tampered.status_code == 303


async def test_logout_ends_the_session_even_for_a_kept_cookie(app):
    async with asgi(app) as http:
        await log_in(http, app.state.people["alice"])
        kept = http.cookies[COOKIE]
        page = await http.get(QUICK)
        out = await http.post("/console/logout", data={"csrf": csrf_of(page)})
        after = await http.get(QUICK)
        http.cookies.set(COOKIE, kept, path="/console")
        replayed = await http.get(QUICK)
    assert out.status_code == 303 and out.headers["location"] == "/console/login?bye=1"
    assert f"{COOKIE}=" in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
    assert after.status_code == replayed.status_code == 303


async def test_a_logout_holds_in_every_api_process_of_the_state_dir_and_after_a_restart(
    temporal_client: Client, rego
):
    """Two apps on one state dir are two API processes; a third, started later, a restart."""
    settings = make_settings(1)
    people = add_people(settings)
    first = console_app(temporal_client, settings, rego)
    second = console_app(temporal_client, settings, rego)
    async with asgi(first) as one, asgi(second) as two:
        await log_in(one, people["alice"])
        kept = one.cookies[COOKIE]
        two.cookies.set(COOKIE, kept, path="/console")
        shared = await two.get(QUICK)
        out = await two.post("/console/logout", data={"csrf": csrf_of(shared)})
        elsewhere = await one.get(QUICK)
    async with asgi(console_app(temporal_client, settings, rego)) as restarted:
        restarted.cookies.set(COOKIE, kept, path="/console")
        after_restart = await restarted.get(QUICK)
    assert shared.status_code == 404, "the other process accepts the session while it lives"
    assert out.status_code == 303
    assert elsewhere.status_code == 303, "logged out on one process is logged out on all"
    assert after_restart.status_code == 303, "and stays logged out after a restart"


def request_with(cookie: str | None = None) -> Request:
    headers = [(b"cookie", f"{COOKIE}={cookie}".encode())] if cookie else []
    return Request({"type": "http", "scheme": "http", "path": "/console", "headers": headers})


def signed_cookie(sessions: Sessions, session: Session) -> str:
    response = Response()
    sessions.write(response, request_with(), session)
    return set_cookie_of(response.headers.getlist("set-cookie"))


def set_cookie_of(headers: list[str]) -> str:
    cookie: SimpleCookie = SimpleCookie()
    for header in headers:
        cookie.load(header)
    return cookie[COOKIE].value


def test_two_processes_and_a_restart_share_every_logout(tmp_path):
    """`Sessions` per process, one state dir: what one logs out, the others refuse."""
    one, two = Sessions.in_state_dir(tmp_path), Sessions.in_state_dir(tmp_path)
    alice = Session.anonymous().logged_in("alice", "fingerprint")
    cookie = signed_cookie(one, alice)
    assert one.read(request_with(cookie)) == two.read(request_with(cookie)) == alice
    one.end(Response(), request_with(cookie), alice)
    assert two.read(request_with(cookie)) is None, "the other process refuses it at once"
    assert one.read(request_with(cookie)) is None
    assert Sessions.in_state_dir(tmp_path).read(request_with(cookie)) is None, "after a restart"
    ended = tmp_path / ENDED_FILE
    assert stat.S_IMODE(ended.stat().st_mode) == 0o600
    assert alice.sid in ended.read_text()


def test_logging_out_an_anonymous_session_records_nothing(tmp_path):
    """Only logins can grow the shared list, not anyone who fetches the login form."""
    sessions = Sessions.in_state_dir(tmp_path)
    sessions.end(Response(), request_with(), Session.anonymous())
    assert not (tmp_path / ENDED_FILE).exists()


def test_ended_sessions_are_forgotten_once_their_cookie_expired(tmp_path):
    now = [1_000.0]
    ended = EndedSessions(tmp_path / ENDED_FILE, clock=lambda: now[0])
    ended.add("old", until=1_100.0)
    ended.add("new", until=5_000.0)
    assert ended.holds("old") and ended.holds("new") and not ended.holds("other")
    now[0] = 2_000.0
    assert not ended.holds("old"), "an expired cookie is refused by its signature anyway"
    ended.add("later", until=9_000.0)
    stored = json.loads((tmp_path / ENDED_FILE).read_text())["ended"]
    assert sorted(stored) == ["later", "new"], "pruned at the next write"


def test_concurrent_logouts_in_several_processes_all_hold(tmp_path):
    """Each writer has its own instance (as a process would); the lock keeps every entry."""

    def log_out(worker: int) -> None:
        ended = EndedSessions(tmp_path / ENDED_FILE)
        for n in range(25):
            ended.add(f"w{worker}-{n}", until=time.time() + 60)

    threads = [threading.Thread(target=log_out, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reader = EndedSessions(tmp_path / ENDED_FILE)
    assert all(reader.holds(f"w{w}-{n}") for w in range(6) for n in range(25))


def test_an_unreadable_list_keeps_what_the_process_knew_and_the_next_logout_repairs_it(
    tmp_path,
):
    ended = EndedSessions(tmp_path / ENDED_FILE)
    ended.add("a", until=time.time() + 60)
    (tmp_path / ENDED_FILE).write_text("{not json")
    assert ended.holds("a"), "a broken file does not resurrect what this process saw end"
    ended.add("b", until=time.time() + 60)
    fresh = EndedSessions(tmp_path / ENDED_FILE)
    assert fresh.holds("a") and fresh.holds("b")


async def test_revoking_the_token_ends_its_sessions(app):
    async with asgi(app) as http:
        await log_in(http, app.state.people["bob"])
        before = await http.get(QUICK)
        PrincipalStore(app.state.settings.principals_path).remove("bob")
        after = await http.get(QUICK)
    assert before.status_code == 404, "logged in: the page says the incident does not exist"
    assert after.status_code == 303


async def test_login_redirects_only_inside_the_console(app):
    async with asgi(app) as http:
        away = await log_in(http, app.state.people["alice"], "https://evil.example/")
    assert away.headers["location"] == "/console"


async def test_signing_secret_is_private_to_the_state_dir_and_stable(tmp_path):
    first = console_secret(tmp_path)
    assert console_secret(tmp_path) == first and len(first) >= 48
    assert stat.S_IMODE((tmp_path / SECRET_FILE).stat().st_mode) == 0o600


async def test_errors_show_on_pages_and_json_errors_stay_problem_json(app):
    async with asgi(app) as http:
        await log_in(http, app.state.people["alice"])
        console = await http.get("/console/incidents/inc-does-not-exist")
        bad_filter = await http.get("/console/incidents?status=bogus&severity=x")
        api = await http.get("/v1/incidents/inc-does-not-exist")
        api_action = await http.post("/v1/incidents/inc-x/steps/s/approve", json={"reason": "r"})
    assert console.status_code == 404
    assert console.headers["content-type"].startswith("text/html")
    assert "no incident &#39;inc-does-not-exist&#39;" in console.text
    assert bad_filter.status_code == 400
    assert "unknown status" in bad_filter.text and "severity must be" in bad_filter.text
    # Reads need a principal too (#14), and a console cookie is none.
    assert api.status_code == 401 and api.headers["content-type"] == "application/problem+json"
    assert api_action.status_code == 401, "the console's cookie is no API credential"


async def test_static_files_are_served_locally(app):
    async with asgi(app) as http:
        css = await http.get("/console/static/console.css")
        js = await http.get("/console/static/console.js")
        other = await http.get("/console/static/..%2Fsession.py")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert js.status_code == 200 and "EventSource" in js.text
    assert other.status_code == 404


async def test_a_form_error_is_shown_with_its_detail(app):
    async with asgi(app) as http:
        await log_in(http, app.state.people["alice"])
        csrf = csrf_of(await http.get(QUICK))
        url = "/console/incidents/inc-none/actions"
        blank = await http.post(
            url, data={"csrf": csrf, "action": "approve", "step": "s", "reason": "  "}
        )
        lease = await http.post(
            url, data={"csrf": csrf, "action": "extend", "step": "s", "lease_s": "soon"}
        )
        unknown = await http.post(url, data={"csrf": csrf, "action": "explode"})
    assert blank.status_code == 422
    assert "reason: String should have at least 1 character" in blank.text
    assert lease.status_code == 422 and "lease_s: Input should be a valid integer" in lease.text
    assert unknown.status_code == 400 and "unknown action &#39;explode&#39;" in unknown.text


async def test_an_action_after_the_session_ended_says_nothing_was_done(app):
    async with asgi(app) as http:
        form = await http.post(
            "/console/incidents/inc-x/actions", data={"action": "release", "reason": "r"}
        )
        login = await http.get(form.headers["location"])
    assert form.status_code == 303
    assert form.headers["location"].startswith("/console/login?next=%2Fconsole%2Fincidents%2Finc-x")
    assert "nothing was done" in login.text


async def test_a_client_that_is_not_a_browser_gets_401_problem_json(app):
    """Scripts and API clients get the API's answer (401 problem+json), not a login page."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bulkhead.test") as http:
        pages = [await http.get(path) for path in ("/console", "/console/approvals", QUICK)]
        action = await http.post(
            "/console/incidents/inc-none/actions", data={"action": "release", "reason": "x"}
        )
    for answer in [*pages, action]:
        assert answer.status_code == 401, answer.request.url
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_a_raw_payload_is_shown_to_a_session_as_inert_json(app):
    """The finding's raw SIEM payload (claim check) behind the console's link: only with
    a session, as JSON the browser never sniffs or runs (attacker-chosen bytes)."""
    store = FileRawStore(app.state.settings.state_dir / "raw")
    payload = b'{"payload_printable": "<script>alert(1)</script>"}'
    (ref,) = store.put_many([payload])
    async with asgi(app) as http:
        anonymous = await http.get(f"/console/raw/{ref.sha256}")
        await log_in(http, app.state.people["alice"])
        shown = await http.get(f"/console/raw/{ref.sha256}")
        missing = await http.get(f"/console/raw/{'0' * 64}")
    assert anonymous.status_code == 303
    assert shown.status_code == 200 and shown.content == payload
    assert shown.headers["content-type"] == "application/json"
    assert shown.headers["x-content-type-options"] == "nosniff"
    assert shown.headers["content-security-policy"].startswith("sandbox")
    assert missing.status_code == 404 and "no raw payload" in missing.text


async def test_a_pause_the_policy_refuses_is_shown_on_the_home_page(app):
    """A responder may not pause automation (the approval policy): the form's answer is
    the API's 403 with the policy's reason, on the home page, and nothing changed."""
    async with asgi(app) as http:
        await log_in(http, app.state.people["alice"])
        csrf = csrf_of(await http.get(QUICK))
        refused = await http.post(
            "/console/automation", data={"csrf": csrf, "action": "pause", "reason": "storm"}
        )
        blank = await http.post(
            "/console/automation", data={"csrf": csrf, "action": "pause", "reason": " "}
        )
    assert refused.status_code == 403
    assert "Not done:</strong> alice may not pause" in refused.text, refused.text[-3000:]
    assert 'id="paused-banner"' not in refused.text
    assert blank.status_code == 422 and "a reason is required" in blank.text
