"""The visualiser's web server: static files plus a small JSON API, on the loopback interface only.

    GET /                       the page (static/index.html)
    GET /static/...             the page's scripts, styles and the vendored onnxruntime-web
    GET /api/info               task, drawing style, splits, predictions summary, whether a model is served
    GET /api/entries?split=&filter=all|solved|failed&q=&offset=&limit=
    GET /api/example?split=&index=
    GET /model/model.onnx       the ONNX export of the served model (when `--model` or `--onnx` is given)
    GET /model/model.json       its metadata: sizes, input/output names, halt_max_steps

A dataset that fails to load does not stop the server: every API call answers with the error, and the
page shows it. The server listens on a loopback address only (127.0.0.1 unless told localhost or ::1) and
answers only requests whose Host is a loopback name, which keeps other web sites from reading it through
DNS rebinding. It serves no file but its own static files and the model export it was given; the request
limits (sizes, time, connections) are in hrm.viz.http_limits.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import threading
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, unquote

from hrm.viz.data import VizData, VizError
from hrm.viz.http_limits import BoundedHandler, BoundedServer

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
# A static file's path: plain names of letters, digits, '.', '_' and '-', none starting with '.', so that
# '..', hidden files, backslashes, NUL bytes and a second round of %-decoding never reach the file system.
STATIC_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
MAX_NUMBER = 10**9 - 1           # offset, limit and index: nine digits are far more than any split holds
MAX_QUERY_FIELDS = 20


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


def _shown(text: str, limit: int = 60) -> str:
    """A client's string quoted for an error message, cut short: an answer never echoes kilobytes back."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _whole_number(query: dict[str, list[str]], key: str, default: int) -> int:
    values = query.get(key)
    if not values:
        return default
    text = values[0]
    if not (text.isascii() and text.isdigit() and len(text) <= len(str(MAX_NUMBER))):
        raise VizError(f"{key} must be a whole number from 0 to {MAX_NUMBER}, not {_shown(text)}")
    return int(text)


class VizServer(BoundedServer):
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


class VizHandler(BoundedHandler):
    server: VizServer
    server_version = "hrm-viz"

    # -- responses ------------------------------------------------------------------------------------

    def _head(self, status: int, length: int, content_type: str, cache: str = "no-cache",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("Cache-Control", cache)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()

    def _json(self, value: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(_finite(value), allow_nan=False, separators=(",", ":")).encode()
        self._head(status, len(body), "application/json", headers=headers)
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._json({"error": message}, status)

    def refuse(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        # Refusals of the request limits are JSON too, as the page expects of every answer.
        self._json({"error": message}, status, headers)

    def _file(self, path: Path, cache: str = "no-cache") -> None:
        content_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
        try:
            file = path.open("rb")
        except OSError:
            self._error(HTTPStatus.NOT_FOUND, f"no such file: {path.name}")
            return
        with file:
            # Streamed: a 100 MB model export is not read into memory once per request.
            self._head(200, os.fstat(file.fileno()).st_size, content_type, cache)
            if self.command != "HEAD":
                shutil.copyfileobj(file, self.wfile, 1 << 20)

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
        # The request target, split by hand: urlsplit would read "//name/x" as a host and a path.
        target, _, query = self.path.partition("#")[0].partition("?")
        if not target.startswith("/"):
            self._error(HTTPStatus.BAD_REQUEST, f"the request target must be a path, not {_shown(target)}")
            return
        path = unquote(target)
        if path in ("/", "/index.html"):
            self._file(STATIC_DIR / "index.html")
        elif path.startswith("/static/"):
            self._static(path[len("/static/"):])
        elif path.startswith("/api/"):
            self._api(path[len("/api/"):], query)
        elif path.startswith("/model/"):
            self._model(path[len("/model/"):])
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no such page: {_shown(path)}")

    def _static(self, relative: str) -> None:
        # Two checks: every segment is a plain name (no '..', '\\', NUL, '%' left after decoding), and the
        # real path, symbolic links followed, lies inside the static folder.
        segments = relative.split("/")
        target = None
        if all(STATIC_NAME.fullmatch(segment) for segment in segments):
            target = (STATIC_DIR / relative).resolve()
        if target is None or not target.is_relative_to(STATIC_DIR) or not target.is_file():
            self._error(HTTPStatus.NOT_FOUND, f"no such file: {_shown('/static/' + relative)}")
            return
        self._file(target, cache="max-age=3600" if segments[0] == "vendor" else "no-cache")

    def _model(self, name: str) -> None:
        model = self.server.model
        if model is None:
            self._error(HTTPStatus.NOT_FOUND, "no model is served; start with `hrm viz --model RUN_DIR`")
        elif name == "model.json":
            self._json(model.metadata)
        elif name == "model.onnx":
            self._file(model.onnx_path)
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no such model file: {_shown(name)}")

    def _api(self, name: str, query_string: str) -> None:
        try:
            query = parse_qs(query_string, max_num_fields=MAX_QUERY_FIELDS)
        except ValueError:
            self._error(HTTPStatus.BAD_REQUEST, f"more than {MAX_QUERY_FIELDS} query parameters")
            return

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
                                        _whole_number(query, "offset", 0), _whole_number(query, "limit", 200)))
            elif name == "example":
                split = arg("split", data.info()["default_split"])
                self._json(data.example(split, _whole_number(query, "index", 0)))
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no such API call: {_shown(name)}")
        except (VizError, ValueError) as error:
            self._error(HTTPStatus.BAD_REQUEST, str(error))
