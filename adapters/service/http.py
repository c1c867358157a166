"""Service fallback over HTTP: flip a web service or feature flag into a fallback mode.

Each target is an `HttpSwitch`: a request that reads the current mode (a JSON value at a
path), one that sets a mode (a JSON body template where "{mode}" is substituted), and
optional separate verify and rollback requests (default: read, and set with the previous
mode). Apply reads first and writes only when the mode differs, so a retried apply sends
nothing twice; verify reads the mode back.

Failures are sorted for the workflow: timeouts, connection errors, 5xx, 408/425/429 may
pass (transient); any other non-2xx answer is permanent, reported with its status and a
short excerpt of the body, never the request headers (they carry the credentials), and
with every secret value the request used blanked out of the excerpt.
"""

from __future__ import annotations

import functools
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx

from adapters.base import PermanentAdapterError, TransientAdapterError
from adapters.secrets import SecretRef
from adapters.service.modes import ModeSwitchAdapter, ModeTable, NoModeError
from contracts.adapter import LAB_ENDPOINT

MODE_PLACEHOLDER = "{mode}"
JsonScalar = str | int | float | bool | None
_TRANSIENT_STATUS = frozenset({408, 425, 429})
_EXCERPT_CHARS = 200


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every client: building one loads the CA bundle,
    which costs more than a whole request to a local service."""
    return httpx.create_ssl_context()


def json_at(document: Any, path: str) -> Any:
    """The value at a dotted path (`status`, `data.mode`, `items.0.state`; "" is the
    whole document); LookupError when it is not there."""
    value = document
    for part in path.split(".") if path else []:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise LookupError(f"no {path!r} in the response")
    return value


def render(template: Any, value: JsonScalar) -> Any:
    """A JSON template with "{mode}" replaced: a string that is exactly the placeholder
    becomes the value itself (keeping its JSON type), elsewhere its text."""
    if isinstance(template, str):
        if template == MODE_PLACEHOLDER:
            return value
        return template.replace(MODE_PLACEHOLDER, str(value))
    if isinstance(template, list):
        return [render(item, value) for item in template]
    if isinstance(template, Mapping):
        return {key: render(item, value) for key, item in template.items()}
    return template


def shown_url(url: str) -> str:
    """A URL fit for a message: no query string or user info (either may hold a token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


@dataclass(frozen=True)
class SecretHeader:
    """A header value read from a secret when the request is made: prefix + secret."""

    secret: SecretRef
    prefix: str = ""

    def __repr__(self) -> str:
        return f"SecretHeader({self.prefix!r} + {self.secret!r})"


def _header_value(where: str, value: object, base: Path | None) -> str | SecretHeader:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        secret = SecretRef.from_config(dict(value), "secret", base=base)
        return SecretHeader(secret, str(value.get("prefix", "")))
    # A ValueError like every other inventory mistake, so a loader needs one except.
    raise ValueError(f"{where} is neither text nor a secret")


@dataclass(frozen=True)
class HttpCall:
    """One request: `url` may hold "{mode}"; `body` is a JSON template; `path` is where
    a response holds the mode (read and verify calls)."""

    method: str
    url: str
    body: Any = None
    path: str | None = None

    @classmethod
    def from_config(cls, record: Mapping[str, Any], *, base_url: str, name: str) -> HttpCall:
        if not isinstance(record, Mapping) or "url" not in record:
            raise ValueError(f"{name}: needs at least a url")
        return cls(
            method=str(record.get("method", "GET")).upper(),
            url=urljoin(base_url, str(record["url"])),
            body=record.get("body"),
            path=str(record["path"]) if "path" in record else None,
        )


@dataclass(frozen=True)
class HttpSwitch(ModeTable[JsonScalar]):
    """How to read and set the mode of one web service."""

    asset: str
    modes: Mapping[str, JsonScalar]
    read: HttpCall
    apply: HttpCall
    verify: HttpCall | None = None  # default: read
    rollback: HttpCall | None = None  # default: apply, with the previous mode
    headers: Mapping[str, str | SecretHeader] = field(default_factory=dict)
    safe_mode: str | None = None

    def __post_init__(self) -> None:
        if self.read.path is None:
            raise ValueError(f"{self.asset}: the read call needs the JSON path of the mode")
        self.check_safe_mode(self.asset)

    @classmethod
    def from_config(
        cls,
        asset: str,
        record: Mapping[str, Any],
        *,
        modes: Mapping[str, JsonScalar],
        safe_mode: str | None = None,
        lab_url: str | None = None,
        secrets_base: Path | None = None,
    ) -> HttpSwitch:
        """An inventory asset's `http` record: `base_url` ("lab" or a URL), `headers`
        (a string, or {"secret_env"|"secret_file", "prefix"}), calls `read` (with `path`),
        `apply`, optional `verify`, `rollback`; each {"method", "url", "body", "path"}."""
        base_url = str(record.get("base_url", LAB_ENDPOINT))
        if base_url == LAB_ENDPOINT:
            if lab_url is None:
                raise ValueError(f"{asset}: base_url is the lab but no lab url was given")
            base_url = lab_url
        base_url = base_url.rstrip("/") + "/"
        headers = {
            header: _header_value(f"{asset}: http.headers.{header}", value, secrets_base)
            for header, value in dict(record.get("headers", {})).items()
        }

        def call(name: str) -> HttpCall | None:
            if name not in record:
                return None
            return HttpCall.from_config(record[name], base_url=base_url, name=f"{asset}.{name}")

        read, apply = call("read"), call("apply")
        if read is None or apply is None:
            raise ValueError(f"{asset}: http needs both a read and an apply call")
        return cls(
            asset=asset,
            modes=dict(modes),
            read=read,
            apply=apply,
            verify=call("verify"),
            rollback=call("rollback"),
            headers=headers,
            safe_mode=safe_mode,
        )


def _excerpt(response: httpx.Response, secrets: list[str]) -> str:
    text = response.text
    for secret in secrets:  # blanked before cutting, so no prefix of one survives
        text = text.replace(secret, "***")
    return re.sub(r"\s+", " ", text).strip()[:_EXCERPT_CHARS]


def _mode_in(response: httpx.Response, switch: HttpSwitch, call: HttpCall) -> JsonScalar:
    where = f"{switch.asset}: {call.method} {shown_url(call.url)}"
    try:
        value = json_at(response.json(), call.path or switch.read.path or "")
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise NoModeError(f"{where} did not answer JSON") from exc
    except LookupError as exc:
        raise NoModeError(f"{where}: {exc}") from exc
    if value is not None and not isinstance(value, str | int | float | bool):
        raise NoModeError(f"{where}: the mode is a {type(value).__name__}, not a value")
    return value


class HttpFallbackAdapter(ModeSwitchAdapter[HttpSwitch, httpx.AsyncClient, JsonScalar]):
    """Adapter `http`: action `set` with `args.mode` on target `{"asset": ...}`."""

    name = "http"
    kind = "HTTP switch"
    noun = "switch(es)"
    done = "sent"
    reads_back = "service reports the mode"
    mismatch = "service reports {current!r}, expected {expected!r}"
    # One pool serves every switch and replaces its own broken connections; an answer
    # like 503 says nothing against the pool, and closing it would break calls in flight.
    redial_after_transient = False

    def __init__(
        self,
        switches: Mapping[str, HttpSwitch],
        *,
        timeout_s: float = 2.0,
        keep_connections: bool = False,
    ) -> None:
        super().__init__(switches, keep_connections=keep_connections)
        self._timeout = httpx.Timeout(timeout_s)

    # --- connections: one kept pool for all switches -----------------------------------

    def _endpoint(self, point: HttpSwitch) -> None:
        return None

    async def _connect(self, point: HttpSwitch) -> httpx.AsyncClient:
        # No redirects (a redirect is usually a login page, not success) and no proxies or
        # .netrc from the environment: the adapter talks to exactly the configured URL.
        return httpx.AsyncClient(
            timeout=self._timeout,
            follow_redirects=False,
            trust_env=False,
            verify=ssl_context(),
        )

    async def _disconnect(self, connection: httpx.AsyncClient) -> None:
        await connection.aclose()

    def _alive(self, connection: httpx.AsyncClient) -> bool:
        return not connection.is_closed

    # --- requests ----------------------------------------------------------------------

    async def _send(
        self,
        http: httpx.AsyncClient,
        switch: HttpSwitch,
        call: HttpCall,
        value: JsonScalar = None,
    ) -> httpx.Response:
        headers: dict[str, str] = {}
        secrets: list[str] = []
        for header, spec in switch.headers.items():
            if isinstance(spec, SecretHeader):
                secret = spec.secret.read()  # read per request: a rotated file counts
                secrets.append(secret)
                headers[header] = spec.prefix + secret
            else:
                headers[header] = spec
        url = call.url.replace(MODE_PLACEHOLDER, quote(str(value), safe=""))
        where = f"{switch.asset}: {call.method} {shown_url(url)}"
        body = render(call.body, value) if call.body is not None else None
        try:
            response = await http.request(call.method, url, headers=headers, json=body)
        except httpx.TimeoutException as exc:
            raise TransientAdapterError(f"{where} timed out") from exc
        except httpx.TransportError as exc:
            raise TransientAdapterError(f"{where} failed: {exc.__class__.__name__}") from exc
        status = response.status_code
        if response.is_success:
            return response
        answer = f"{where} answered {status}: {_excerpt(response, secrets)}"
        if status >= 500 or status in _TRANSIENT_STATUS:
            raise TransientAdapterError(answer)
        raise PermanentAdapterError(answer)

    async def _read(
        self, connection: httpx.AsyncClient, point: HttpSwitch, *, verifying: bool
    ) -> JsonScalar:
        """The mode value the read call (or for verify, the verify call) reports."""
        call = (point.verify or point.read) if verifying else point.read
        return _mode_in(await self._send(connection, point, call), point, call)

    async def _write(
        self,
        connection: httpx.AsyncClient,
        point: HttpSwitch,
        value: JsonScalar,
        *,
        restoring: bool,
    ) -> None:
        call = (point.rollback or point.apply) if restoring else point.apply
        await self._send(connection, point, call, value)

    def _change(self, point: HttpSwitch, mode: str, value: JsonScalar, current: JsonScalar) -> str:
        return (
            f"{point.apply.method} {shown_url(point.apply.url)} with mode {value!r} "
            f"({mode}), was {current!r} ({point.mode_of(current)})"
        )
