"""Limits every request meets before any route runs: body size and content encoding.

Routes read their bodies through orchestrator.api.body, but a route that forgets to
(a console form parsed by Starlette, a future endpoint) must still not be able to buffer
200 MB: this middleware refuses a declared length over the limit without reading a byte,
and cuts off a chunked body as soon as it passes the limit. A compressed body is refused
(415) rather than misread: no route decompresses, and a gzip bomb is a size check
bypass waiting to happen.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.api.body import TooLarge
from orchestrator.api.problems import Problem, problem_response

IDENTITY = frozenset({b"", b"identity"})


class RequestLimits:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, body_timeout_s: float) -> None:
        self.app = app
        self.limit = max_body_bytes
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        refusal = self._refusal(headers, scope.get("path", ""))
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        received = 0
        deadline = asyncio.get_running_loop().time() + self.body_timeout_s

        body_done = False

        async def limited() -> Message:
            nonlocal received, body_done
            if body_done:  # later receives wait for a disconnect (SSE): no deadline there
                return await receive()
            try:
                # timeout_at, not wait_for: no extra task per body chunk.
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise Problem(
                    408,
                    f"the body did not arrive within {self.body_timeout_s:g} s",
                    slug="request-timeout",
                    headers={"Connection": "close"},
                ) from None
            if message["type"] == "http.request":
                body_done = not message.get("more_body", False)
                received += len(message.get("body", b""))
                if received > self.limit:
                    # A Problem: the route's exception handler answers 413 problem+json.
                    raise TooLarge(self.limit)
            return message

        await self.app(scope, limited, send)

    def _refusal(self, headers: dict[bytes, bytes], path: str) -> ASGIApp | None:
        declared = headers.get(b"content-length", b"").strip()
        if declared.isdigit() and int(declared) > self.limit:
            return problem_response(
                413,
                f"body of {int(declared)} bytes exceeds the limit of {self.limit} bytes",
                slug="too-large",
                instance=path,
                headers={"Connection": "close"},
            )
        encoding = headers.get(b"content-encoding", b"").strip().lower()
        if encoding not in IDENTITY:
            return problem_response(
                415,
                f"content encoding {encoding.decode('latin-1')!r} is not accepted; "
                "send the body uncompressed",
                slug="unsupported-media-type",
                instance=path,
            )
        return None
