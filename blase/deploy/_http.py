"""The HTTP layer of ``blase serve`` (the standard library's threading server); logic is in ``_serve``.

Routes: ``GET /health``, ``GET /model`` (what is served: version, task, input schema, metrics),
``POST /predict`` (``application/json``: an object or an array of objects; ``text/csv`` or
``application/vnd.apache.parquet``: a file). Every answer is JSON and carries the served version in
``X-Blase-Model-Version``; errors are ``{"error", "hint", "status"}`` with a 4xx status, never a
traceback. Binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from blase.deploy._serve import ModelService, ServeError, read_json
from blase.errors import BlaseError

__all__ = ["make_model_server", "serve_model"]

logger = logging.getLogger(__name__)

#: Default cap on a request body (a CSV or Parquet upload): 256 MiB.
MAX_BODY = 256 * 1024 * 1024
#: An oversized body is read away up to this size before the 413 (beyond it the connection drops).
DRAIN_MAX = 64 * 1024 * 1024
ROUTES = {"GET /health": "health", "GET /model": "model", "POST /predict": "predict"}


def make_model_server(service: ModelService, *, host: str = "127.0.0.1", port: int = 8000,
                      max_body: int = MAX_BODY) -> ThreadingHTTPServer:
    """A server (not yet serving) answering for ``service``; port 0 picks a free port."""
    handler = type("BoundModelHandler", (ModelHandler,), {"service": service, "max_body": max_body})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def serve_model(service: ModelService, *, host: str = "127.0.0.1", port: int = 8000,
                max_body: int = MAX_BODY, announce: Callable[[str], Any] = print) -> None:
    """Serve until interrupted; ``announce`` gets the base URL once the port is bound."""
    server = make_model_server(service, host=host, port=port, max_body=max_body)
    shown = f"[{host}]" if ":" in host else host
    announce(f"http://{shown}:{server.server_address[1]}")
    try:
        server.serve_forever()
    finally:
        server.server_close()


class ModelHandler(BaseHTTPRequestHandler):
    """Routes a request to :class:`ModelService` and writes its JSON answer."""

    service: ModelService
    max_body: int
    server_version = "blase-serve"
    protocol_version = "HTTP/1.1"  # keep-alive: a client's next request reuses the connection
    # headers and body go out as two writes: with Nagle's algorithm the body waits for the
    # client's delayed ACK, 40 ms on Linux, on every small answer
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def _answer(self, method: str) -> None:
        path = urlsplit(self.path).path.rstrip("/") or "/"
        try:
            body = self._body() if method == "POST" else b""
            route = ROUTES.get(f"{method} {path}")
            if route is None:
                known = ", ".join(ROUTES)
                status = 405 if any(r.endswith(f" {path}") for r in ROUTES) else 404
                raise ServeError(f"no route {method} {path}", hint=f"routes: {known}", status=status)
            if route == "health":
                self._json(self.service.health())
            elif route == "model":
                self._json(self.service.info())
            else:
                self._predict(body)
        except ServeError as exc:
            self._error(exc.status, exc)
        except BlaseError as exc:  # the input schema check, a feature the transform cannot make
            self._error(422, exc)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # a bug: the client gets a JSON message, the log the traceback
            logger.exception("blase serve: %s %s failed", method, self.path)
            self._error(500, ServeError(f"internal error: {type(exc).__name__}",
                                        hint="this is a bug in Blase; rerun `blase --debug serve` and report it"))

    def _predict(self, body: bytes) -> None:
        kind = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
        if kind == "application/json":
            answer = self.service.predict_json(read_json(body))
        else:
            answer = self.service.predict_upload(body, kind)
        self._json(answer.to_json(), version=answer.version)

    def _body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ServeError("Content-Length is not a number") from None
        if length > self.max_body:
            self._discard(length)
            raise ServeError(f"the request body holds {length:,} bytes, more than the {self.max_body:,} "
                             "this server takes", status=413,
                             hint="send smaller batches, or restart with a larger `blase serve --max-body`")
        if not length:
            raise ServeError("the request has no body", hint="POST a JSON record, a JSON array, or a file")
        return self.rfile.read(length)

    def _discard(self, length: int) -> None:
        """Read an oversized body away (up to a bound) so the client, still sending, gets the 413."""
        self.close_connection = True  # what is left unread must not be taken for the next request
        left = min(length, DRAIN_MAX)
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)

    def _json(self, data: Any, status: int = 200, *, version: str | None = None) -> None:
        try:
            text = json.dumps(data, default=str, allow_nan=False)
        except ValueError:  # NaN or inf in a prediction: JSON has none, send null
            text = json.dumps(_finite(data), default=str)
        payload = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Blase-Model", self.service.name)
        if version or (isinstance(data, dict) and data.get("version")):
            self.send_header("X-Blase-Model-Version", str(version or data["version"]))
        self.end_headers()
        self.wfile.write(payload)

    def _error(self, status: int, exc: BlaseError) -> None:
        self._json({"error": exc.message, "hint": exc.hint, "status": status}, status)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
