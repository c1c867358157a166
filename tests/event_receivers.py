"""What a SIEM runs to hear Bulkhead's events, on loopback: an HTTP endpoint that checks
Standard Webhooks signatures, Debian's rsyslog, and a TLS syslog listener; and the check
of an OCSF event against the schema's facts (tests/fixtures/ocsf_remediation)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port
from standardwebhooks import Webhook

RSYSLOGD = shutil.which("rsyslogd") or (
    "/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None
)
# A test that needs the real rsyslog (conftest turns this skip into a failure in CI).
needs_rsyslog = pytest.mark.skipif(
    RSYSLOGD is None, reason="rsyslogd is not installed (.ci/run installs `rsyslog`)"
)
SCHEMA = json.loads(
    (Path(__file__).parent / "fixtures/ocsf_remediation/schema-1.8.0.json").read_text()
)
# RFC 5424: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
RFC5424 = re.compile(
    r"^<(?P<pri>\d{1,3})>(?P<version>\d) (?P<timestamp>\S+) (?P<hostname>\S+) "
    r"(?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) (?P<sd>-|(?:\[(?:[^\]\\]|\\.)*\])+)"
    r"(?: (?P<msg>.*))?$"
)


class WebhookReceiver:
    """A SIEM's webhook endpoint: verifies each request with the Standard Webhooks
    reference library, keeps one copy per webhook-id (a repeat is a duplicate, as the
    spec asks receivers to treat it) and can be told to answer an error."""

    def __init__(self, secret: str, port: int | None = None) -> None:
        self.secret = secret
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/siem/bulkhead"
        self.events: dict[str, dict[str, Any]] = {}
        self.deliveries = 0
        self.rejected = 0
        self.answer: int | None = None  # an error status to answer instead
        self.refuse: set[str] = set()  # webhook-ids answered 400
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> WebhookReceiver:
        state, verifier = self, Webhook(self.secret)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if state.answer is not None:
                    self.send_response(state.answer)
                elif self.headers["webhook-id"] in state.refuse:
                    self.send_response(400)
                else:
                    try:
                        event = verifier.verify(body, dict(self.headers))
                    except Exception:  # noqa: BLE001 - any failed check is a 401
                        state.rejected += 1
                        self.send_response(401)
                    else:
                        state.deliveries += 1
                        state.events.setdefault(self.headers["webhook-id"], event)
                        self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class Rsyslog:
    """Debian's rsyslogd in the foreground: imtcp on a loopback port, every message to a
    file in rsyslog's RFC 5424 template (RSYSLOG_SyslogProtocol23Format)."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.output = directory / "messages.log"
        self.pidfile = directory / "rsyslogd.pid"
        self._process: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        work = self.directory / "work"
        work.mkdir(parents=True, exist_ok=True)
        return f"""
global(workDirectory="{work}" maxMessageSize="64k")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{self.port}")
*.* action(type="omfile" file="{self.output}" template="RSYSLOG_SyslogProtocol23Format"
           flushOnTXEnd="on")
"""

    def start(self) -> Rsyslog:
        assert RSYSLOGD is not None
        conf = self.directory / "rsyslog.conf"
        conf.write_text(self.config())
        self._process = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(conf), "-i", str(self.pidfile)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                output = self._process.stdout.read().decode() if self._process.stdout else ""
                raise RuntimeError(f"rsyslogd exited {self._process.returncode}: {output}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("rsyslogd did not listen")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None

    def messages(self) -> list[dict[str, Any]]:
        """Each line rsyslog wrote, parsed as RFC 5424, with MSG read as JSON."""
        if not self.output.exists():
            return []
        parsed = []
        for line in self.output.read_text().splitlines():
            match = RFC5424.match(line)
            assert match is not None, f"not RFC 5424: {line[:200]}"
            fields = match.groupdict()
            fields["event"] = json.loads(fields["msg"])
            parsed.append(fields)
        return parsed

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.messages()
            if len(found) >= count:
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"rsyslog wrote {len(self.messages())} message(s), not {count}")


class TlsSyslogReceiver:
    """A syslog-over-TLS listener (RFC 5425): reads octet-counted frames."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.frames: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> TlsSyslogReceiver:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0, ssl=self.context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = await reader.readuntil(b" ")
                self.frames.append(await reader.readexactly(int(length)))
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def schema_problems(event: dict[str, Any]) -> list[str]:
    """What in `event` the OCSF 1.8.0 schema facts do not allow (empty when it is valid)."""
    facts = SCHEMA["classes"].get(str(event.get("class_uid")))
    if facts is None:
        return [f"class_uid {event.get('class_uid')} is not a Remediation class"]
    problems = _attributes(event, facts) + _classification(event, facts)
    problems += _object(event.get("metadata"), "metadata")
    problems += _object(event.get("metadata", {}).get("product"), "product", "metadata.product")
    if event.get("metadata", {}).get("version") != SCHEMA["ocsf_version"]:
        problems.append("metadata.version is not the schema's version")
    for name, kind in (("device", "device"), ("connection_info", "network_connection_info"),
                       ("policy", "policy")):  # fmt: skip
        if name in event:
            problems += _object(event[name], kind, name)
    return problems


def _attributes(event: dict[str, Any], facts: dict[str, Any]) -> list[str]:
    """Required ones present, none unknown to the class or its declared profiles, typed."""
    allowed = set(facts["attributes"])
    for profile in event.get("metadata", {}).get("profiles", []):
        allowed |= set(SCHEMA["profiles"].get(profile, []))
    problems = [f"{name}: required, missing" for name in facts["required"] if name not in event]
    problems += [
        f"{name}: not in the class or its profiles" for name in event if name not in allowed
    ]
    problems += _typed(event, facts["types"], "")
    if not isinstance(event.get("time"), int) or event["time"] < 10**12:
        problems.append("time is not epoch milliseconds")
    return problems


def _classification(event: dict[str, Any], facts: dict[str, Any]) -> list[str]:
    """Category, class, type, enums, and each caption matching its id."""
    problems = []
    if event.get("category_uid") != SCHEMA["category"]["uid"]:
        problems.append(f"category_uid {event.get('category_uid')} is not Remediation")
    if event.get("category_name", SCHEMA["category"]["caption"]) != SCHEMA["category"]["caption"]:
        problems.append("category_name is not the category's caption")
    if event.get("class_name", facts["caption"]) != facts["caption"]:
        problems.append("class_name is not the class's caption")
    if event.get("type_uid") != event["class_uid"] * 100 + event.get("activity_id", -1):
        problems.append("type_uid is not class_uid * 100 + activity_id")
    for name, enum in facts["enums"].items():
        if name in event and str(event[name]) not in enum:
            problems.append(f"{name} {event[name]} is not in the schema's enum")
    if event.get("status_id") == 99 and not event.get("status"):
        problems.append("status_id 99 (Other) without the `status` it stands for")
    if event.get("activity_id") == 99 and not event.get("activity_name"):
        problems.append("activity_id 99 (Other) without its `activity_name`")
    for caption_of, id_name in (("status", "status_id"), ("severity", "severity_id")):
        wanted = facts["enums"][id_name].get(str(event.get(id_name)))
        if caption_of in event and event.get(id_name) != 99 and event[caption_of] != wanted:
            problems.append(f"{caption_of} {event[caption_of]!r} is not the caption {wanted!r}")
    return problems


def _object(value: Any, kind: str, where: str | None = None) -> list[str]:
    where = where or kind
    if not isinstance(value, dict):
        return [f"{where}: not an object"]
    facts = SCHEMA["objects"][kind]
    problems = [f"{where}.{n}: required, missing" for n in facts["required"] if n not in value]
    problems += [f"{where}.{n}: not an attribute" for n in value if n not in facts["attributes"]]
    one_of = facts["constraints"].get("at_least_one", [])
    if one_of and not any(value.get(n) not in (None, "") for n in one_of):
        problems.append(f"{where}: needs at least one of {one_of}")
    for name, enum in facts["enums"].items():
        if name in value and str(value[name]) not in enum:
            problems.append(f"{where}.{name} {value[name]} is not in the schema's enum")
    problems += _typed(value, facts["types"], f"{where}.")
    return problems


def _typed(value: dict[str, Any], types: dict[str, str], where: str) -> list[str]:
    problems = []
    for name, item in value.items():
        kind = types.get(name)
        integer = kind in ("integer_t", "long_t", "timestamp_t")
        if integer and (not isinstance(item, int) or isinstance(item, bool)):
            problems.append(f"{where}{name}: {item!r} is not an integer ({kind})")
        if kind == "string_t" and not isinstance(item, str | list):  # profiles: string_t[]
            problems.append(f"{where}{name}: {item!r} is not a string")
    return problems
