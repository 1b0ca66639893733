"""The visualiser's web server: static files plus a small JSON API, on the loopback interface only.

    GET /                       the page (static/index.html)
    GET /static/...             the page's scripts, styles and the vendored onnxruntime-web
    GET /api/info               task, drawing style, splits, predictions summary, whether a model is served
    GET /api/entries?split=&filter=all|solved|failed&q=&offset=&limit=
    GET /api/example?split=&index=
    GET /model/model.onnx       the ONNX export of the served model (when `--model` or `--onnx` is given)
    GET /model/model.json       its metadata: sizes, input/output names, halt_max_steps

A dataset that fails to load does not stop the server: every API call answers with the error, and the
page shows it. The server answers only requests whose Host is a loopback name, which keeps other web
sites from reading it through DNS rebinding.
"""
from __future__ import annotations

import json
import math
import posixpath
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

from hrm.viz.data import VizData, VizError

STATIC_DIR = Path(__file__).resolve().parent / "static"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# NOTE: explicit types; Python's mimetypes table misses .wasm and .mjs on some systems, and browsers
# refuse to compile WebAssembly streamed with any type but application/wasm.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".json": "application/json", ".wasm": "application/wasm", ".onnx": "application/octet-stream",
    ".png": "image/png", ".svg": "image/svg+xml", ".txt": "text/plain; charset=utf-8", ".ico": "image/x-icon",
}
# Scripts only from this server; 'wasm-unsafe-eval' lets onnxruntime-web compile its WebAssembly.
CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class ServedModel:
    """An ONNX file and its metadata JSON, served under /model/."""

    def __init__(self, onnx_path: Path, metadata: dict[str, Any]):
        self.onnx_path = Path(onnx_path)
        self.metadata = metadata


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: send them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


class VizServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, load: Callable[[], VizData | None], model: ServedModel | None = None,
                 host: str = "127.0.0.1", quiet: bool = True):
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"the visualiser serves on loopback only (127.0.0.1, localhost, ::1), not {host!r}")
        if host == "::1":
            import socket
            self.address_family = socket.AF_INET6
        super().__init__((host, port), VizHandler)
        self.model = model
        self.quiet = quiet
        try:
            self.data: VizData | None = load()
            self.load_error: str | None = None
        except (VizError, ValueError) as error:
            self.data, self.load_error = None, str(error)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = self.server_address[0]
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}/"

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="hrm-viz", daemon=True)
        thread.start()
        return thread


class VizHandler(BaseHTTPRequestHandler):
    server: VizServer
    server_version = "hrm-viz"

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            sys.stderr.write("hrm viz: " + (format % args) + "\n")

    # -- responses ------------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, cache: str = "no-cache") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, value: Any, status: int = 200) -> None:
        body = json.dumps(_finite(value), allow_nan=False, separators=(",", ":")).encode()
        self._send(status, body, "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json({"error": message}, status)

    def _file(self, path: Path, cache: str = "no-cache") -> None:
        content_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
        self._send(200, path.read_bytes(), content_type, cache)

    # -- routing --------------------------------------------------------------------------------------

    def _host_allowed(self) -> bool:
        host = self.headers.get("Host", "")
        name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:host.find("]")]
        return name in LOOPBACK_HOSTS

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if not self._host_allowed():
            self._error(HTTPStatus.FORBIDDEN, "this server answers only on localhost")
            return
        url = urlsplit(self.path)
        path = unquote(url.path)
        try:
            if path in ("/", "/index.html"):
                self._file(STATIC_DIR / "index.html")
            elif path.startswith("/static/"):
                self._static(path[len("/static/"):])
            elif path.startswith("/api/"):
                self._api(path[len("/api/"):], parse_qs(url.query))
            elif path.startswith("/model/"):
                self._model(path[len("/model/"):])
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no such page: {path}")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _static(self, relative: str) -> None:
        # Normalise and refuse anything that climbs out of the static folder.
        clean = posixpath.normpath("/" + relative).lstrip("/")
        target = (STATIC_DIR / clean).resolve()
        if not clean or not target.is_relative_to(STATIC_DIR) or not target.is_file():
            self._error(HTTPStatus.NOT_FOUND, f"no such file: /static/{relative}")
            return
        self._file(target, cache="max-age=3600" if clean.startswith("vendor/") else "no-cache")

    def _model(self, name: str) -> None:
        model = self.server.model
        if model is None:
            self._error(HTTPStatus.NOT_FOUND, "no model is served; start with `hrm viz --model RUN_DIR`")
        elif name == "model.json":
            self._json(model.metadata)
        elif name == "model.onnx":
            self._file(model.onnx_path)
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no such model file: {name}")

    def _api(self, name: str, query: dict[str, list[str]]) -> None:
        def arg(key: str, default: str) -> str:
            return query.get(key, [default])[0]

        data = self.server.data
        if data is None and self.server.load_error is None:       # only a model to try: nothing to browse
            if name == "info":
                self._json({"browse": False, "model": self.server.model.metadata if self.server.model else None})
            else:
                self._error(HTTPStatus.NOT_FOUND, "no dataset or predictions are loaded")
            return
        if data is None:
            # The page shows this instead of a blank screen.
            payload = {"error": self.server.load_error, "model": self.server.model is not None}
            self._json(payload, HTTPStatus.UNPROCESSABLE_ENTITY if name == "info" else HTTPStatus.INTERNAL_SERVER_ERROR)
            return
        try:
            if name == "info":
                self._json(data.info() | {"model": self.server.model.metadata if self.server.model else None})
            elif name == "entries":
                split = arg("split", data.info()["default_split"])
                self._json(data.entries(split, arg("filter", "all"), arg("q", ""),
                                        int(arg("offset", "0")), int(arg("limit", "200"))))
            elif name == "example":
                split = arg("split", data.info()["default_split"])
                self._json(data.example(split, int(arg("index", "0"))))
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no such API call: {name}")
        except (VizError, ValueError) as error:
            self._error(HTTPStatus.BAD_REQUEST, str(error))
