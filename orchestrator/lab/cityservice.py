"""Lab city web services: a small HTTP app (Starlette, served by uvicorn) on loopback.

Routes (JSON everywhere; PUT needs `Authorization: Bearer <token>`):
- `GET /healthz` -> 200 {"status": "ok"}: the simulator itself is up.
- `GET|PUT /tram/mode` {"mode": normal|degraded|line_of_sight}: tram operations.
- `GET|PUT /permits/mode` {"mode": normal|maintenance_page}: the permits portal.
- `GET /dispatch/health` -> 200 {"status": "ok"} or 503 {"status": "down", "reason"}:
  emergency dispatch (CAD).

The break switch: putting the permits portal into `maintenance_page` takes dispatch
down. This simulates a fallback that shares a dependency with dispatch (the portal and
CAD sit behind one municipal database proxy, and the maintenance page takes it over), so
a guard that watches essential services has something real to catch and roll back.

Every accepted PUT is counted per service (`writes["tram"]`), so tests can prove a step
wrote exactly once. Faults for tests: `dispatch_up=False` takes dispatch down directly,
`delay_s` slows every route but /healthz, `fail_status` makes them all answer that status.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass, field
from json import JSONDecodeError

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TRAM_MODES = ("normal", "degraded", "line_of_sight")
PERMITS_MODES = ("normal", "maintenance_page")
BREAKING_PERMITS_MODE = "maintenance_page"
SERVICES = {"tram": TRAM_MODES, "permits": PERMITS_MODES}


class _QuietServer(uvicorn.Server):
    """uvicorn without signal handlers: the lab runs inside someone else's process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class CityServiceLab:
    """Simulated tram operations, permits portal and dispatch behind one HTTP listener."""

    host: str = "127.0.0.1"
    port: int = 15081
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    modes: dict[str, str] = field(default_factory=lambda: dict.fromkeys(SERVICES, "normal"))
    writes: Counter[str] = field(default_factory=Counter)
    dispatch_up: bool = True
    delay_s: float = 0.0
    fail_status: int | None = None
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def dispatch_healthy(self) -> bool:
        return self.dispatch_up and self.modes["permits"] != BREAKING_PERMITS_MODE

    def app(self) -> Starlette:
        routes = [Route("/healthz", self._healthz), Route("/dispatch/health", self._dispatch)]
        for service in SERVICES:
            routes.append(Route(f"/{service}/mode", self._mode, methods=["GET", "PUT"]))
        return Starlette(routes=routes)

    async def _fault(self) -> Response | None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail_status is not None:
            return JSONResponse({"error": "injected fault"}, status_code=self.fail_status)
        return None

    async def _healthz(self, request: Request) -> Response:
        del request
        return JSONResponse({"status": "ok"})

    async def _dispatch(self, request: Request) -> Response:
        del request
        if fault := await self._fault():
            return fault
        if self.dispatch_healthy:
            return JSONResponse({"status": "ok"})
        reason = (
            "database proxy taken over by the permits maintenance page"
            if self.dispatch_up
            else "CAD offline"
        )
        return JSONResponse({"status": "down", "reason": reason}, status_code=503)

    def _authorized(self, request: Request) -> bool:
        given = request.headers.get("authorization", "")
        return secrets.compare_digest(given.encode(), f"Bearer {self.token}".encode())

    async def _mode(self, request: Request) -> Response:
        service = request.url.path.strip("/").split("/")[0]
        if fault := await self._fault():
            return fault
        if request.method == "GET":
            return JSONResponse({"mode": self.modes[service]})
        if not self._authorized(request):
            return JSONResponse(
                {"error": "missing or invalid bearer token"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            body = await request.json()
        except JSONDecodeError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        mode = body.get("mode") if isinstance(body, dict) else None
        if mode not in SERVICES[service]:
            allowed = ", ".join(SERVICES[service])
            return JSONResponse(
                {"error": f"mode {mode!r} is not one of {allowed}"}, status_code=422
            )
        self.modes[service] = mode
        self.writes[service] += 1
        return JSONResponse({"mode": mode})

    async def start(self) -> None:
        """Listen (again, after stop: modes and counters are kept)."""
        if self._task is not None:
            return
        # Bound here rather than by uvicorn, so a busy port raises OSError to the caller
        # instead of uvicorn's sys.exit inside a task.
        # IPPROTO_TCP spelled out: asyncio only sets TCP_NODELAY on accepted sockets whose
        # proto says TCP, and without it keep-alive requests stall on delayed ACKs (40 ms).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = int(sock.getsockname()[1])  # port 0 asks the kernel for a free one
        config = uvicorn.Config(
            self.app(),
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._serve(self._server, sock))
        while not self._server.started:
            if self._task.done():
                await self._task  # re-raises why it could not start
                raise RuntimeError(f"lab city services did not start on {self.url}")
            await asyncio.sleep(0.01)

    @staticmethod
    async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
        with sock:
            await server.serve(sockets=[sock])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        self._server = None
        self._task = None
