"""Real receivers on loopback for Apprise: an HTTP endpoint for json:// and an aiosmtpd
SMTP server for mailto://."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from conftest import free_port


class JsonReceiver:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200  # set to 500 to play a channel that is down
        self.reply = b""  # the body of a 200 (Slack's incoming webhooks answer "ok")
        self.content_types: list[str] = []
        self.port = 0
        self.paths: list[str] = []
        self.server: ThreadingHTTPServer | None = None


@contextmanager
def json_receiver() -> Iterator[JsonReceiver]:
    receiver = JsonReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if receiver.status == 200:
                receiver.bodies.append(json.loads(body))
                receiver.paths.append(self.path)
                receiver.content_types.append(self.headers.get("Content-Type", ""))
            reply = receiver.reply if receiver.status == 200 else b""
            self.send_response(receiver.status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    receiver.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], str]] = []  # from, to, the message
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        content = envelope.content.decode("utf-8", "replace")
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), content))
        return "250 OK"


@contextmanager
def smtp_receiver() -> Iterator[Mailbox]:
    mailbox = Mailbox()
    mailbox.port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


@contextmanager
def tls_json_receiver(directory: Path) -> Iterator[JsonReceiver]:
    """The JSON receiver over HTTPS with a throwaway self-signed certificate: Apprise's
    Teams (Power Automate workflows) and Slack plugins speak only https."""
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    with json_receiver() as receiver:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server = receiver.server
        assert server is not None
        server.socket = context.wrap_socket(server.socket, server_side=True)
        yield receiver
