"""One threaded HTTP(S) server on a free loopback port, for the in-process stand-ins.

The Terraform Cloud fake, the Langfuse stand-in and the module-registry stand-in each serve a
`BaseHTTPRequestHandler` from a thread of the test process. `LocalServer` is the part they share:
a `ThreadingHTTPServer` on 127.0.0.1 port 0 (the kernel picks a free port, so parallel workers
never collide), TLS when the client only talks https://, daemon handler threads, one serving
thread, and a stop that frees the port. A plain handler class is enough::

    with LocalServer(PingHandler, name="clickhouse-ping") as server:
        requests.get(f"{server.url}/ping")

What the owner shares with its handlers goes in `state`; a handler reads it as `self.server.state`.
`send_bytes` and `send_json` write one whole response (status, headers, typed and sized body).
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
# serve_forever looks for shutdown() this often: short, so stop() returns at once (tests start many servers).
_POLL_INTERVAL = 0.05
_JOIN_TIMEOUT = 5.0


class Server(ThreadingHTTPServer):
    """The server a handler sees as `self.server`; `state` is what its owner shares with the handlers."""

    daemon_threads = True  # a client that hangs must not block stop() or the interpreter's exit

    def __init__(self, handler: type[BaseHTTPRequestHandler], state: Any) -> None:
        super().__init__((HOST, 0), handler)
        self.state = state


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side TLS context presenting `cert` (e.g. a `localca.CaFiles`' cert and key)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile=cert, keyfile=key)
    return context


class LocalServer:
    """`handler` served on 127.0.0.1:<free port> from a daemon thread, over TLS when `tls` is given.

    Use as a context manager, or `start()` and `stop()`. `state` becomes `self.server.state` in the
    handler (None for a handler that needs nothing); `name` names the serving thread and the logs.
    """

    def __init__(self, handler: type[BaseHTTPRequestHandler], state: Any = None, *,
                 tls: ssl.SSLContext | None = None, name: str = "local-http") -> None:
        self.handler = handler
        self.state = state
        self.tls = tls
        self.name = name
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def server(self) -> Server:
        if self._server is None:
            raise RuntimeError(f"{self.name} is not running: use it as a context manager or call start()")
        return self._server

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the server listens on."""
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def url(self) -> str:
        """The base URL, e.g. `https://127.0.0.1:40123` (no trailing slash)."""
        return f"{'https' if self.tls else 'http'}://{HOST}:{self.port}"

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError(f"{self.name} is already running at {self.url}")
        server = Server(self.handler, self.state)
        if self.tls is not None:
            try:
                # Handshake lazily in the handler's thread, so one stalled client cannot block accept().
                server.socket = self.tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
            except BaseException:
                server.server_close()  # the port is bound already: free it
                raise
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": _POLL_INTERVAL},
                                        name=self.name, daemon=True)
        self._thread.start()
        log.debug("%s serving at %s", self.name, self.url)
        return self

    def stop(self) -> None:
        """Stop serving and free the port; a no-op when not running."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        if thread is not None:
            # shutdown() waits for serve_forever to return: only safe once the thread runs it.
            server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=_JOIN_TIMEOUT)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def send_bytes(handler: BaseHTTPRequestHandler, status: int, payload: bytes | None, content_type: str = "",
               headers: Mapping[str, str] | None = None) -> None:
    """Write one response: the status, `headers`, then the payload with its type and length.
    Without a payload (None) the response ends after the headers, as a 204 does."""
    handler.send_response(status)
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    if payload is not None:
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    if payload is not None:
        handler.wfile.write(payload)


def send_json(handler: BaseHTTPRequestHandler, status: int, body: Any, content_type: str = "application/json",
              headers: Mapping[str, str] | None = None) -> None:
    """`send_bytes` with `body` as JSON (None: no body)."""
    send_bytes(handler, status, None if body is None else json.dumps(body).encode(), content_type, headers)
