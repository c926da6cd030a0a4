"""The HTTP layer of ``blase ui``: routes, the token, static files. Logic lives in ``_api``.

Security rules (DESIGN.md, issue 15): the server binds 127.0.0.1 unless told otherwise, and
another host needs a token for every request; every POST needs the page's token in the
``X-Blase-Token`` header (a cross-site form cannot set it); a loopback server only answers
requests whose ``Host`` is a loopback name (no DNS rebinding); ``--read-only`` refuses every
change; errors are JSON, never a traceback.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import shutil
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from blase.errors import BlaseError, RunNotFoundError
from blase.track import RunFilter
from blase.ui._api import REFRESH_EVERY, Dashboard, RunsQuery, UIError
from blase.ui._builder import Builder
from blase.ui._events import finite

__all__ = ["UIServer", "make_server", "serve"]

logger = logging.getLogger(__name__)

TOKEN_HEADER = "X-Blase-Token"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: The page's files, by URL name (nothing else under static/ is served).
STATIC = {"app.js": "text/javascript", "style.css": "text/css", "builder.js": "text/javascript",
          "builder.css": "text/css"}
#: Paths the page handles itself: the server answers them with index.html.
PAGES = ("/", "/runs", "/run", "/compare", "/models", "/assistant", "/builder")
MAX_BODY = 64 * 1024


@dataclass
class UIServer:
    """What the handler needs: the dashboard, the token, and who may call."""

    dashboard: Dashboard
    token: str
    loopback: bool
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Set when the server closes: open event streams end.
    stopping: threading.Event = field(default_factory=threading.Event)
    builder: Builder = field(init=False)

    def __post_init__(self) -> None:
        self.builder = Builder(self.dashboard)


def make_server(dashboard: Dashboard, *, host: str = "127.0.0.1", port: int = 8765,
                token: str | None = None) -> tuple[ThreadingHTTPServer, UIServer]:
    """A server (not yet serving) over ``dashboard``; port 0 picks a free port.

    Raises
    ------
    UIError
        When ``host`` is not a loopback address and no token is given.
    """
    loopback = host in LOOPBACK_HOSTS
    if not loopback and not token:
        raise UIError(f"--host {host} makes the dashboard reachable from other machines; it needs a token",
                      hint=f"add --token TOKEN, e.g. `blase ui --host {host} --token {secrets.token_urlsafe(16)}`")
    state = UIServer(dashboard, token or secrets.token_urlsafe(24), loopback)
    handler = type("BoundHandler", (Handler,), {"ui": state})
    server = _Server((host, port), handler)
    server.daemon_threads = True
    dashboard.index.keep_fresh(REFRESH_EVERY)  # reads the runs now; the runs table waits for that
    server.index, server.stopping = dashboard.index, state.stopping
    return server, state


class _Server(ThreadingHTTPServer):
    """Stops the run index's background refresh when it closes."""

    index: Any = None
    stopping: threading.Event | None = None

    def shutdown(self) -> None:
        if self.stopping is not None:
            self.stopping.set()  # the event streams end, so their threads do not outlive the server
        super().shutdown()

    def server_close(self) -> None:
        if self.stopping is not None:
            self.stopping.set()
        if self.index is not None:
            self.index.stop()
        super().server_close()


class Handler(BaseHTTPRequestHandler):
    """Routes a request to :class:`Dashboard` and writes JSON, a page, or a file."""

    ui: UIServer
    server_version = "blase-ui"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    # ------------------------------------------------------------------ entry points

    def do_GET(self) -> None:
        self._answer(self._get)

    def do_POST(self) -> None:
        self._answer(self._post)

    def _answer(self, route: Any) -> None:
        try:
            self._check_caller()
            route(urlsplit(self.path))
        except UIError as exc:
            self._error(exc.status, exc)
        except RunNotFoundError as exc:
            self._error(404, exc)
        except BlaseError as exc:
            self._error(400, exc)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # a bug: the page gets a JSON message, the log the traceback
            logger.exception("blase ui: %s %s failed", self.command, self.path)
            self._error(500, UIError(f"internal error: {type(exc).__name__}",
                                     hint="this is a bug in Blase; rerun `blase --debug ui` and report it"))

    def _check_caller(self) -> None:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
        if self.ui.loopback and host not in LOOPBACK_HOSTS:
            raise UIError(f"Host {host!r} is not this machine", status=403)
        if not self.ui.loopback and not self.path.startswith("/static/") and not self._has_token(query=True):
            raise UIError("this server needs its token", hint="open the URL `blase ui` printed", status=403)

    def _has_token(self, *, query: bool) -> bool:
        given = self.headers.get(TOKEN_HEADER) or ""
        if query and not given:
            given = (parse_qs(urlsplit(self.path).query).get("token") or [""])[0]
        return hmac.compare_digest(given.encode(), self.ui.token.encode())

    # ------------------------------------------------------------------ routes

    def _get(self, url: Any) -> None:
        path, params = url.path, {k: v[-1] for k, v in parse_qs(url.query).items()}
        dash = self.ui.dashboard
        if path in PAGES or path.startswith(("/run/", "/session/")):
            self._page()
        elif path.startswith("/static/"):
            self._static(path.removeprefix("/static/"))
        elif path == "/api/info":
            self._json(dash.info())
        elif path == "/api/runs":
            self._json(dash.runs(_runs_query(params)))
        elif path == "/api/index":  # answers at once, also while the first listing is under way
            self._json(dash.index.progress())
        elif path == "/api/compare" and "runs" in params:
            self._json(dash.compare_many(_list(params.get("runs")), _list(params.get("metrics"))))
        elif path == "/api/compare":
            self._json(dash.compare(_need(params, "a"), _need(params, "b")))
        elif path == "/api/sessions":
            self._json(dash.sessions())
        elif path.startswith("/api/sessions/"):
            self._json(dash.session(unquote(path.removeprefix("/api/sessions/"))))
        elif path == "/api/models":
            self._json(dash.models())
        elif path.startswith("/api/runs/"):
            self._run_route(path.removeprefix("/api/runs/"))
        elif path.startswith("/api/builder/"):
            self._json(self.ui.builder.get(path.removeprefix("/api/builder/"), params))
        else:
            raise UIError(f"no page {path!r}", status=404)

    def _run_route(self, rest: str) -> None:
        ref, _, tail = rest.partition("/")
        if not tail:
            self._json(self.ui.dashboard.run(unquote(ref)))
        elif tail == "events":
            self._stream(unquote(ref))
        elif tail.startswith("artifacts/"):
            file, kind = self.ui.dashboard.artifact(unquote(ref), unquote(tail.removeprefix("artifacts/")))
            self._file(file, kind)
        else:
            raise UIError(f"no page /api/runs/{rest!r}", status=404)

    def _stream(self, ref: str) -> None:
        """Server-Sent Events of run ``ref`` (see :mod:`blase.ui._events`) until it ends."""
        start = self.headers.get("Last-Event-ID") or (parse_qs(urlsplit(self.path).query).get("from") or [None])[0]
        messages = self.ui.dashboard.run_events(ref, start, stopping=self.ui.stopping.is_set)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()  # HTTP/1.0: the stream ends when the connection closes
        for chunk in messages:
            self.wfile.write(chunk)
            self.wfile.flush()

    def _post(self, url: Any) -> None:
        if not self._has_token(query=False):
            raise UIError(f"a change needs the page's token in the {TOKEN_HEADER} header",
                          hint="use the page served by `blase ui`", status=403)
        body = self._body()
        dash = self.ui.dashboard
        with self.ui.lock:  # one change at a time
            if url.path == "/api/models/promote":
                self._json(dash.promote(_need(body, "project"), _need(body, "model"), _need(body, "version")))
            elif url.path == "/api/models/rollback":
                self._json(dash.rollback(_need(body, "project"), _need(body, "model"), body.get("to")))
            elif url.path == "/api/views":
                self._json(dash.save_view(_need(body, "name"), str(body.get("query") or "")))
            elif url.path == "/api/views/delete":
                self._json(dash.delete_view(_need(body, "name")))
            elif url.path.startswith("/api/sessions/") and url.path.endswith("/decide"):
                sid = unquote(url.path.removeprefix("/api/sessions/").removesuffix("/decide"))
                args = body.get("args")
                self._json(dash.decide(sid, _need(body, "action"), args=args if isinstance(args, dict) else None,
                                       note=body.get("note") if isinstance(body.get("note"), str) else None))
            elif url.path.startswith("/api/builder/"):
                self._json(self.ui.builder.post(url.path.removeprefix("/api/builder/"), body))
            else:
                raise UIError(f"no action {url.path!r}", status=404)

    def _body(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise UIError("Content-Length is not a number") from None
        if length > MAX_BODY:
            raise UIError(f"the request body holds {length} bytes, more than {MAX_BODY}", status=413)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            raise UIError("the request body is not JSON", hint='send e.g. {"model": "m", "version": "v2"}') from None
        if not isinstance(body, dict):
            raise UIError("the request body is not a JSON object")
        return body

    # ------------------------------------------------------------------ writing

    def _send(self, status: int, kind: str, payload: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def _json(self, data: Any, status: int = 200) -> None:
        try:
            text = json.dumps(data, default=str, allow_nan=False)
        except ValueError:  # a NaN or inf (a diverged loss): JSON has none, send them as strings
            text = json.dumps(finite(data), default=str)
        self._send(status, "application/json", text.encode())

    def _error(self, status: int, exc: BlaseError) -> None:
        self._json({"error": exc.message, "hint": exc.hint, "status": status}, status)

    def _page(self) -> None:
        html = (resources.files("blase.ui") / "static" / "index.html").read_text(encoding="utf-8")
        html = html.replace("{{TOKEN}}", self.ui.token)
        self._send(200, "text/html; charset=utf-8", html.encode(), {
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'",
            "X-Frame-Options": "DENY",
        })

    def _static(self, name: str) -> None:
        if name not in STATIC:
            raise UIError(f"no static file {name!r}", status=404)
        data = (resources.files("blase.ui") / "static" / name).read_bytes()
        self._send(200, STATIC[name] + "; charset=utf-8", data)

    def _file(self, path: Any, kind: str) -> None:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(0)
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(size))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", "sandbox")
            self.end_headers()
            shutil.copyfileobj(f, self.wfile)


def _need(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise UIError(f"the request needs {key!r}", hint=f"give {key} as a string")
    return value


def _runs_query(params: dict[str, str]) -> RunsQuery:
    try:
        page, per_page = int(params.get("page") or 1), int(params.get("per_page") or 50)
    except ValueError:
        raise UIError("page and per_page are whole numbers") from None
    quick = {k: params.get(k) or None for k in ("status", "kind", "model", "since", "until", "hash")}
    return RunsQuery(where=params.get("where"), sort=params.get("sort"), project=params.get("project"),
                     filters=RunFilter(**quick), cols=_list(params.get("cols")), page=page, per_page=per_page)


def _list(value: str | None) -> list[str]:
    """``"a,b,,c"`` -> ``["a", "b", "c"]``."""
    return [x.strip() for x in (value or "").split(",") if x.strip()]


def serve(dashboard: Dashboard, *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
          open_browser: bool = False, announce: Any = print) -> None:
    """Serve the dashboard until interrupted; ``announce`` gets the URL to open (with the token
    when the host is not loopback)."""
    server, state = make_server(dashboard, host=host, port=port, token=token)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{server.server_address[1]}/"
    if not state.loopback:
        url += f"?token={state.token}"
    announce(url)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    finally:
        server.server_close()
