"""Bounded HTTP for the visualiser: a slow, huge or malformed client gets a short refusal, never a hung
thread or an unbounded buffer, and the server goes on answering everyone else.

    request line    at most MAX_REQUEST_LINE bytes                          else 414
    request head    (request line + headers) at most MAX_HEAD bytes          else 431
                    complete within HEAD_TIMEOUT seconds in all              else 408
    body            only with a Content-Length, at most MAX_BODY bytes       else 411 / 413
    methods         GET and HEAD; any other is read (bounded) and refused    405
    connections     at most MAX_CONNECTIONS at once; one more is told        503 and closed
    after the head  every socket read or write times out after IO_TIMEOUT seconds

http.server's own limits are 64 KiB per line and 100 headers, with no time limit: one client that sends a
byte every few seconds would hold its thread for ever. So the head is read here, from the socket, under a
single deadline, and only then handed to http.server's parser.
"""
from __future__ import annotations

import io
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_REQUEST_LINE = 8 * 1024
MAX_HEAD = 32 * 1024
MAX_BODY = 64 * 1024
HEAD_TIMEOUT = 10.0
IO_TIMEOUT = 30.0
MAX_CONNECTIONS = 64
ALLOWED_METHODS = ("GET", "HEAD")


class Refused(Exception):
    """A request answered with `status` and a one-line `message` before it reaches the routes."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _end_of_head(buffer: bytes) -> int:
    """Index just past the blank line that ends the head, or -1. http.client accepts bare LF too."""
    ends = [i + len(marker) for marker in (b"\n\r\n", b"\n\n") if (i := buffer.find(marker)) >= 0]
    return min(ends) if ends else -1


class BoundedHandler(BaseHTTPRequestHandler):
    """A request handler with the limits above; subclasses define do_GET and may override `refuse`."""

    head_timeout = HEAD_TIMEOUT          # class attributes, so that a test can shorten them
    timeout = IO_TIMEOUT                 # StreamRequestHandler sets it on the socket in setup()

    @property
    def quiet(self) -> bool:
        """Log every request only when the server says so (hrm viz --verbose)."""
        return getattr(self.server, "quiet", True)

    def refuse(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        body = (message + "\n").encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own refusals (a malformed request line or header, 431, 505) take the same form.
        self.refuse(code, message or HTTPStatus(code).phrase)

    def send_response(self, code: int, message: str | None = None) -> None:
        self._responded = True
        # parse_request sets 'HTTP/0.9' before it checks the version, and http.server writes no status line
        # or headers for 0.9; no request here is answered as 0.9, so a refusal always says what it is.
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.0"
        super().send_response(code, message)

    def log_line(self, text: str) -> None:
        sys.stderr.write(f"hrm viz: {text}\n")

    def log_message(self, format: str, *args: Any) -> None:
        if not self.quiet:
            self.log_line(format % args)

    # -- one request ----------------------------------------------------------------------------------

    def handle_one_request(self) -> None:
        # Every connection serves one request (HTTP/1.0, no keep-alive): a client holds a thread for one
        # bounded head, one bounded body and one response, no longer.
        self.close_connection = True
        self._responded = False
        # '' (not 'HTTP/0.9') so that a refusal sent before the request line is parsed has a status line.
        self.command, self.request_version, self.requestline, self.path = None, "", "", ""
        try:
            try:
                head, leftover = self._read_head()
                line, _, headers = head.partition(b"\n")
                self.raw_requestline = line + b"\n"
                self.rfile = io.BytesIO(headers)
                if not self.parse_request():                  # it has answered 400 or 431 itself
                    return
                self.connection.settimeout(self.timeout)
                if self.command in ALLOWED_METHODS:
                    getattr(self, "do_" + self.command)()
                else:
                    self._discard_body(leftover)
                    raise Refused(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not served; only GET and HEAD")
            except Refused as refusal:
                if not self._responded:
                    allow = {"Allow": ", ".join(ALLOWED_METHODS)} if refusal.status == 405 else None
                    self.refuse(refusal.status, refusal.message, allow)
                self.wfile.flush()
                self._linger()
                return
            self.wfile.flush()
        except _ClientGone:
            pass
        except OSError as error:                      # reset, broken pipe, or a client that stopped reading
            if not self.quiet:
                self.log_line(f"{self.client_address[0]}: connection lost ({type(error).__name__})")
        except Exception as error:                    # a bug: one line in the log, a 500 if nothing was sent
            self.log_line(f"internal error on {self.command} {self.path[:200]!r}: {type(error).__name__}: {error}")
            if not self._responded:
                try:
                    self.refuse(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error ({type(error).__name__}); see the server's log")
                except OSError:
                    pass

    def _linger(self) -> None:
        """After a refusal, drain what the client is still sending (bounded in bytes and time) before closing:
        closing a socket with unread input sends a reset, and the client may lose the refusal with it."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
            deadline, drained = time.monotonic() + 1.0, 0
            while drained < 4 * MAX_HEAD and (remaining := deadline - time.monotonic()) > 0:
                self.connection.settimeout(remaining)
                chunk = self.connection.recv(65536)
                if not chunk:
                    break
                drained += len(chunk)
        except OSError:
            pass

    def _recv(self, deadline: float, size: int = 4096) -> bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Refused(HTTPStatus.REQUEST_TIMEOUT, f"the request took longer than {self.head_timeout:g} s to arrive")
        self.connection.settimeout(remaining)
        try:
            return self.connection.recv(size)
        except TimeoutError:
            raise Refused(HTTPStatus.REQUEST_TIMEOUT,
                          f"the request took longer than {self.head_timeout:g} s to arrive") from None

    def _read_head(self) -> tuple[bytes, bytes]:
        """(request line + headers, the bytes after them), read under one deadline and size limit."""
        deadline = time.monotonic() + self.head_timeout
        buffer = b""
        while True:
            buffer = buffer.lstrip(b"\r\n")           # RFC 9112 §2.2: ignore blank lines before the request
            line_end = buffer.find(b"\n")
            if line_end > MAX_REQUEST_LINE or (line_end < 0 and len(buffer) > MAX_REQUEST_LINE):
                raise Refused(HTTPStatus.REQUEST_URI_TOO_LONG, f"request line longer than {MAX_REQUEST_LINE} bytes")
            if line_end >= 0 and len(buffer[:line_end].split()) != 3:
                # Also refuses HTTP/0.9's "GET /path", whose answer would carry no status line.
                raise Refused(HTTPStatus.BAD_REQUEST, "malformed request line; expected METHOD /path HTTP/1.x")
            end = _end_of_head(buffer)
            if end > MAX_HEAD or (end < 0 and len(buffer) > MAX_HEAD):
                raise Refused(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"request headers longer than {MAX_HEAD} bytes")
            if end >= 0:
                return buffer[:end], buffer[end:]
            chunk = self._recv(deadline)
            if not chunk:
                if buffer:
                    raise Refused(HTTPStatus.BAD_REQUEST, "the request ended before its headers did")
                raise _ClientGone
            buffer += chunk

    def _discard_body(self, leftover: bytes) -> None:
        """Read and drop a refused request's body, so that the client reads the refusal rather than a reset."""
        if "Transfer-Encoding" in self.headers:
            raise Refused(HTTPStatus.LENGTH_REQUIRED, "a body must come with a Content-Length")
        text = self.headers.get("Content-Length", "0").strip()
        if not (text.isascii() and text.isdigit()):
            raise Refused(HTTPStatus.BAD_REQUEST, "Content-Length must be a whole number")
        length = int(text)
        if length > MAX_BODY:
            raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request body larger than {MAX_BODY} bytes")
        deadline = time.monotonic() + self.head_timeout
        received = len(leftover)
        while received < length:
            chunk = self._recv(deadline, min(65536, length - received))
            if not chunk:
                raise _ClientGone
            received += len(chunk)


class _ClientGone(Exception):
    """The client closed the connection before sending a request: nothing to answer."""


class BoundedServer(ThreadingHTTPServer):
    """A threading HTTP server that runs at most MAX_CONNECTIONS handlers at once and logs errors in one line."""

    daemon_threads = True
    max_connections = MAX_CONNECTIONS

    def server_activate(self) -> None:
        self._slots = threading.BoundedSemaphore(self.max_connections)
        super().server_activate()

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            # Answered from the accepting thread, so in bounded time: read what the client has sent within
            # 50 ms (closing on unread input would send a reset, which can lose the answer), then a short write.
            try:
                request.settimeout(0.05)
                try:
                    request.recv(MAX_HEAD)
                except TimeoutError:
                    pass
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                                b"Content-Length: 29\r\nConnection: close\r\n\r\ntoo many connections; retry\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        # socketserver prints a whole traceback; one line says enough, and the server carries on.
        error = sys.exc_info()[1]
        sys.stderr.write(f"hrm viz: error with a request from {client_address[0]}: {type(error).__name__}: {error}\n")
