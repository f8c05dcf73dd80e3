"""``SandboxServer``: the sandbox as a real threaded HTTP server on loopback.

    with SandboxServer() as sb:              # free port, random super token
        token = requests.post(sb.url, data={"token": sb.super_token, ...}).text

``start()`` returns once the server accepts connections; ``stop()`` shuts it
down and removes its temporary database. Besides REDCap's ``/api/`` there are
two control calls, both POST with ``token=<super token>``:

* ``/_sandbox/reset``: empty the database (a freshly installed REDCap);
* ``/_sandbox/delete_project`` with ``project_token=<32-char token>``: remove
  that project and everything in it, so drills can always clean up (REDCap's
  API has no project delete).

Request logging never shows tokens: the log line names content and action
and prints ``token=********``.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness.sandbox import exceptions as exc
from harness.sandbox.forms import FormError, parse_form
from harness.sandbox.models import SandboxBackend, new_super_token
from harness.sandbox.params import Params
from harness.sandbox.responses import Reply
from harness.sandbox.storage import Database
from harness.sandbox.urls import dispatch

log = logging.getLogger("harness.sandbox")


class _Handler(BaseHTTPRequestHandler):
    server_version = "Apache"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    @property
    def backend(self) -> SandboxBackend:
        return self.server.backend  # type: ignore[attr-defined]

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        # The request line holds no secrets (tokens travel in the body); keep it at debug level.
        log.debug("sandbox: %s - %s", self.address_string(), format % args)

    def _send(self, status: int, content_type: str, body, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if isinstance(body, bytes):
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        body.seek(0, 2)
        size = body.tell()
        body.seek(0)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        shutil.copyfileobj(body, self.wfile, 1 << 16)
        body.close()

    def _error(self, error: exc.ApiError, return_format: str) -> None:
        status, ctype, body = exc.format_error(error, return_format)
        self._send(status, ctype, body)

    def do_GET(self):  # noqa: N802
        self._drain()
        self._error(exc.MethodNotAllowed(), "xml")

    do_PUT = do_DELETE = do_PATCH = do_GET  # noqa: N815

    def _drain(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def _form(self) -> Params:
        length = self.headers.get("Content-Length")
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        parts = parse_form(self.rfile, content_type=self.headers.get("Content-Type", ""),
                           length=int(length) if length else None, chunked=chunked)
        return Params(parts)

    def do_POST(self):  # noqa: N802
        path = self.path.split("?", 1)[0]
        started = time.perf_counter()
        try:
            params = self._form()
        except (FormError, ValueError) as e:
            log.info("sandbox: malformed request body: %s", e)
            self.close_connection = True
            return self._error(exc.BadRequest(), "xml")
        try:
            if path in ("/api/", "/api"):
                self._api(params)
            elif path == "/_sandbox/reset":
                self._control(params, reset=True)
            elif path == "/_sandbox/delete_project":
                self._control(params, reset=False)
            else:
                self._error(exc.NotFound(f"The requested URI {path} was not found."), params.return_format)
        finally:
            log.info('sandbox: POST %s content=%s action=%s token=******** %.0f ms', path, params.content or "-",
                     params.get("action") or "-", (time.perf_counter() - started) * 1000)
            params.close()

    def _api(self, p: Params) -> None:
        try:
            reply: Reply = dispatch(self.backend, p)
        except exc.ApiError as e:
            return self._error(e, p.return_format)
        except Exception:  # a sandbox bug must still answer like REDCap does (500), and be logged
            log.exception("sandbox: internal error for content=%s", p.content)
            return self._error(exc.ServerError(), p.return_format)
        self._send(reply.status, reply.content_type, reply.body, reply.headers)

    def _control(self, p: Params, *, reset: bool) -> None:
        try:
            self.backend.super_user(p.token)
            if reset:
                self.backend.reset()
            else:
                self.backend.delete_project(p.token, p.get("project_token").strip())
        except exc.ApiError as e:
            return self._error(e, p.return_format)
        self._send(200, "text/plain; charset=utf-8", b"1")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class SandboxServer:
    """The embedded REDCap-compatible server; a context manager.

    ``db`` is a SQLite file to keep (``None``: a private temporary one);
    ``super_token`` a 64-char hex token (``None``: a random one).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, db=None, super_token: str | None = None,
                 version: str = "15.7.6"):
        self.host = host
        self.requested_port = port
        self.db_path = db
        self.super_token = (super_token or new_super_token()).upper()
        if len(self.super_token) != 64 or any(c not in "0123456789ABCDEF" for c in self.super_token):
            raise ValueError("the super token must be 64 hexadecimal characters")
        self.version = version
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._db: Database | None = None
        self.backend: SandboxBackend | None = None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the sandbox is not started")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}/"

    @property
    def url(self) -> str:
        """The API endpoint, ending with ``/api/`` as every REDCap client expects."""
        return self.base_url + "api/"

    def delete_project(self, project_token: str) -> None:
        """Remove a project and everything in it (what ``/_sandbox/delete_project`` does)."""
        if self.backend is None:
            raise RuntimeError("the sandbox is not started")
        self.backend.delete_project(self.super_token, project_token)

    def bind(self) -> "SandboxServer":
        """Open the socket and the database (start() and serve_forever() do it for you)."""
        if self._httpd is not None:
            return self
        self._httpd = _Server((self.host, self.requested_port), _Handler)
        self._db = Database(self.db_path)
        self.backend = SandboxBackend(self._db, super_token=self.super_token, version=self.version,
                                      base_url=self.base_url)
        self._httpd.backend = self.backend  # type: ignore[attr-defined]
        return self

    def start(self) -> "SandboxServer":
        if self._thread is not None:
            return self
        self.bind()

        def run():
            self._ready.set()
            self._httpd.serve_forever(poll_interval=0.1)

        self._thread = threading.Thread(target=run, name="redcap-sandbox", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the sandbox server did not start")
        return self

    def serve_forever(self) -> None:
        """Run in the foreground until interrupted (``python -m harness.sandbox``)."""
        self.bind()
        self._ready.set()
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._close()

    def stop(self) -> None:
        if self._httpd is None:
            return
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(10)
        self._close()

    def _close(self) -> None:
        if self._httpd is not None:
            self._httpd.server_close()
        if self._db is not None:
            self._db.close()
        self._httpd = self._thread = self._db = None
        self._ready.clear()

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
