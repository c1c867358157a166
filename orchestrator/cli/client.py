"""How every CLI command talks to the API, so all of them fail the same way.

A command either gets the API's JSON answer or stops with a `Failure`: one line on
stderr (plus, for a 422, one line per invalid field) and an exit code that tells a
script what went wrong without parsing text. No traceback reaches the user for a
missing token, an unreachable API or an error the API answered.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ParamSpec
from urllib.parse import quote

from orchestrator.config import Settings
from orchestrator.responders.operator import operator_token, operator_token_path

if TYPE_CHECKING:
    import httpx

# Exit codes of every command that calls the API (scripts branch on them).
EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and found a problem (a failed check, a broken chain)
EXIT_USAGE = 2  # bad flags or settings, no token: fix the command line or the config
EXIT_UNREACHABLE = 3  # no answer: connection refused, DNS, timeout
EXIT_REFUSED = 4  # the API answered 4xx: authentication, policy, unknown id, conflict, invalid
EXIT_API_FAILED = 5  # the API answered 5xx (or something that is not the API's answer)
EXIT_INTERRUPTED = 130  # Ctrl-C

EXIT_CODES_HELP = f"""\
exit codes:
  {EXIT_OK}    done
  {EXIT_FAILED}    the command ran and found a problem (failed check, broken audit chain)
  {EXIT_USAGE}    usage or configuration: bad flags, invalid settings, no token
  {EXIT_UNREACHABLE}    the API cannot be reached (connection refused, DNS, timeout)
  {EXIT_REFUSED}    the API refused the request (4xx: token, policy, unknown id, conflict, \
invalid field)
  {EXIT_API_FAILED}    the API failed (5xx, or an answer that is not Bulkhead's)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)"""

# RFC 6750 b64token: anything else cannot travel in an Authorization header.
BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
UNUSED_EXTRAS = ("h2", "httpx._main")  # see _import_httpx_lean
MAX_DETAIL_CHARS = 300  # a non-problem body (a proxy's HTML page) is cut to one short line


class Failure(Exception):  # noqa: N818 - a command's outcome, not a bug: `raise Failure(...)`
    """Why a command stopped: the summary line, detail lines and the exit code."""

    def __init__(
        self,
        exit_code: int,
        summary: str,
        details: Iterable[str] = (),
        *,
        status: int | None = None,
        slug: str | None = None,
    ) -> None:
        super().__init__(summary)
        self.exit_code = exit_code
        self.summary = summary
        self.details = list(details)
        self.status = status  # the HTTP status the API answered, if it answered
        self.slug = slug  # the last segment of the problem's `type`, e.g. unknown-step

    def report(self) -> int:
        print(f"error: {self.summary}", file=sys.stderr)
        for line in self.details:
            print(f"  {line}", file=sys.stderr)
        return self.exit_code


P = ParamSpec("P")


def reports_failures(command: Callable[P, int]) -> Callable[P, int]:
    """Turn a `Failure` raised by the command into its stderr lines and exit code."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            return command(*args, **kwargs)
        except Failure as failure:
            return failure.report()

    return run


# --- credentials -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Credential:
    token: str = field(repr=False)
    source: str  # where it came from, named in a 401 so a stale token is easy to find


def credential(flag: str | None, settings: Settings, *, read: bool) -> Credential | None:
    """The bearer token to send: --token, then settings (BULKHEAD_TOKEN / `token`), then,
    for reads only, the local operator credential `bulkhead up` writes into the state dir.

    Writes never fall back to the operator: it is a viewer, and approvals must name the
    person who gave them.
    """
    # Surrounding whitespace is what copying from a terminal or a file adds: not the token.
    if flag and flag.strip():
        return Credential(flag.strip(), "--token")
    configured = settings.token.get_secret_value().strip() if settings.token else ""
    if configured:
        return Credential(configured, "BULKHEAD_TOKEN or `token` setting")
    if read:
        token = operator_token(settings)
        if token:
            return Credential(token, f"local operator credential {operator_token_path(settings)}")
    return None


def require_credential(
    flag: str | None, settings: Settings, *, read: bool, action: str
) -> Credential:
    """The credential to send, or a usage `Failure` saying how to get one."""
    found = credential(flag, settings, read=read)
    if found is not None:
        if not BEARER_TOKEN.fullmatch(found.token):
            raise Failure(
                EXIT_USAGE,
                f"the token from {found.source} is not a bearer token (RFC 6750: letters, "
                "digits and -._~+/ only); was it pasted with a space or a line break?",
            )
        return found
    if read:
        raise Failure(
            EXIT_USAGE,
            f"no token to {action} with: pass --token, set BULKHEAD_TOKEN, or run "
            f"`bulkhead up --state-dir {settings.state_dir}` here (it writes "
            f"{operator_token_path(settings)})",
        )
    raise Failure(
        EXIT_USAGE,
        f"no token to {action} with: pass --token or set BULKHEAD_TOKEN to a principal's token "
        "(`bulkhead principals add NAME --role ROLE`); the local operator credential only reads",
    )


# --- HTTP ------------------------------------------------------------------------------------


def path_segment(value: str) -> str:
    """An id inside a URL path; step ids keep their readable `:` and `@`."""
    return quote(value, safe=":@")


def request(
    method: str,
    url: str,
    *,
    timeout_s: float,
    redact: Iterable[str] = (),
    auth_source: str | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """One HTTP call; a 2xx answer, or a `Failure` saying why not.

    `redact` are secrets that may appear in an error (a URL token); `auth_source` is
    named when the API does not accept the token.
    """
    _import_httpx_lean()
    import httpx  # noqa: PLC0415 - keeps `bulkhead --help` fast

    secrets = [s for s in redact if s]
    try:
        response = httpx.request(method, url, timeout=timeout_s, verify=_tls(url), **kwargs)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise Failure(EXIT_USAGE, f"invalid API URL {url}: {_one_line(exc, secrets)}") from None
    except httpx.TimeoutException as exc:
        # A request that was sent may still take effect; one never sent cannot.
        sent = isinstance(exc, httpx.ReadTimeout) and method != "GET"
        raise Failure(
            EXIT_UNREACHABLE,
            f"cannot reach {url}: no answer within {timeout_s:g} s"
            + (" (the request was sent: it may still take effect)" if sent else ""),
        ) from None
    except httpx.HTTPError as exc:
        raise Failure(EXIT_UNREACHABLE, f"cannot reach {url}: {_one_line(exc, secrets)}") from None
    if not response.is_success:
        raise _refusal(response, auth_source)
    return response


def _import_httpx_lean() -> None:
    """Import httpx and its transport, httpcore, without the extras a request never uses.

    Each is imported only if installed, and together they were a third of a command's
    run (#18): h2 (HTTP/2; the test extra brings it, the CLI speaks HTTP/1.1) and httpx's
    own command line (click, rich's progress bars, pygments). A None in sys.modules makes
    importing a name fail, which httpx and httpcore answer by leaving that feature out;
    the entries go again afterwards. A process that imported httpx already is left as is.
    """
    if "httpx" in sys.modules or "httpcore" in sys.modules:
        return
    blocked = [name for name in UNUSED_EXTRAS if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment] # the documented import block
    try:
        import httpcore  # noqa: F401, PLC0415
        import httpx  # noqa: F401, PLC0415
    except ImportError:
        pass  # a version that requires them after all: `request` imports it as it is
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def _tls(url: str) -> bool:
    """Whether this request may use TLS, and so needs the CA bundle to verify it.

    Loading the bundle takes about 25 ms, a twentieth of a command's budget (#18). A
    plain-http URL without a proxy from the environment never meets TLS: the request
    goes to that URL alone (redirects are not followed). Anything else verifies.
    """
    from urllib.request import getproxies  # noqa: PLC0415 - httpx has imported it already

    return not url.startswith("http://") or bool(getproxies())


def answer_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise Failure(
            EXIT_API_FAILED,
            f"{response.request.url.copy_with(query=None)} answered {response.status_code} "
            "but not with JSON; is --api-url a Bulkhead API?",
        ) from None


def _one_line(exc: Exception, secrets: list[str]) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    for secret in secrets:
        text = text.replace(secret, "<token>")
    return text


def _refusal(response: httpx.Response, auth_source: str | None) -> Failure:
    status = response.status_code
    problem = _problem(response)
    phrase = _text(problem.get("title")) or _phrase(status)
    detail = _text(problem.get("detail"))
    if not problem:
        detail = " ".join(response.text.split())[:MAX_DETAIL_CHARS]
    summary = f"{status} {phrase}" + (f": {detail}" if detail else "")
    if status == HTTPStatus.UNAUTHORIZED and auth_source:
        summary += f" (token from {auth_source})"
    retry_after = response.headers.get("retry-after")
    if status >= 500 and retry_after:
        summary += f" (retry after {retry_after} s)"
    slug = _text(problem.get("type")).rsplit("/", 1)[-1] or None
    return Failure(
        EXIT_REFUSED if 400 <= status < 500 else EXIT_API_FAILED,
        summary,
        field_errors(problem.get("errors")),
        status=status,
        slug=slug,
    )


def _problem(response: httpx.Response) -> dict[str, Any]:
    """The RFC 9457 body, or {} when the answer is not one (a proxy's page, plain text)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def field_errors(errors: Any) -> list[str]:
    """One `where: why` line per invalid field of a 422 problem.

    Bulkhead sends `{"pointer", "detail"}`; `loc`/`msg` (FastAPI's own shape) are read
    too, so an API that forgot to convert one still names the field.
    """
    if not isinstance(errors, list):
        return []
    lines = []
    for error in errors:
        if not isinstance(error, dict):
            continue
        where = error.get("pointer")
        if where is None and isinstance(error.get("loc"), list):
            where = "/" + "/".join(str(part) for part in error["loc"])
        why = error.get("detail", error.get("msg"))
        lines.append(f"{_text(where) or '(document)'}: {_text(why) or 'invalid'}")
    return lines


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "(unknown status)"


def _text(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


# --- the API ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Api:
    """The Bulkhead API at `url`, called with a bearer credential."""

    url: str
    credential: Credential
    timeout_s: float

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._call("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._call("POST", path, json=body)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = request(
            method,
            self.url.rstrip("/") + path,
            timeout_s=self.timeout_s,
            auth_source=self.credential.source,
            headers={"Authorization": f"Bearer {self.credential.token}"},
            **kwargs,
        )
        return answer_json(response)
