"""What the visualiser's server refuses to serve: files outside its static folder (however the path is
spelt), bad query parameters (a one-line 4xx, never a traceback), and other hosts than loopback.
Every request is real HTTP to a server on 127.0.0.1."""
from __future__ import annotations

import json
import re
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hrm.viz.server as server_module
from viz_fixtures import http_get, raw_request
from hrm.cli_args import CommandLineExit
from hrm.viz.commands import spec as viz_spec
from hrm.viz.data import VizData
from hrm.viz.server import STATIC_DIR, VizServer

SECRET = b"SECRET-7d1f0c: this file must never be served"


@pytest.fixture
def guarded(serve, sudoku_dataset, tmp_path, monkeypatch):
    """A server over a copy of the static folder that holds symbolic links out of it, with a secret
    file beside the dataset, inside it, and beside the static folder."""
    static = tmp_path / "static"
    shutil.copytree(STATIC_DIR, static, ignore=shutil.ignore_patterns("vendor"))
    for place in (tmp_path / "secret.txt", sudoku_dataset / "secret.txt", sudoku_dataset / "test" / "secret.txt"):
        place.write_bytes(SECRET)
    (static / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (static / "outside").symlink_to(tmp_path)
    (static / ".hidden.txt").write_bytes(SECRET)
    monkeypatch.setattr(server_module, "STATIC_DIR", static.resolve())
    return serve(lambda: VizData(sudoku_dataset))


TRAVERSALS = [
    "/static/../secret.txt", "/static/../../secret.txt", "/static/%2e%2e/secret.txt", "/static/%2E%2e/%2e%2E/secret.txt",
    "/static/..%2fsecret.txt", "/static/..%2F..%2Fsecret.txt", "/static/%252e%252e/%252e%252e/secret.txt",
    "/static/%252e%252e%252fsecret.txt", "/static/..\\secret.txt", "/static/..%5c..%5csecret.txt",
    "/static/leak.txt", "/static/outside/secret.txt", "/static/outside/sudoku/secret.txt", "/static/.hidden.txt",
    "/static//tmp/secret.txt", "/static/%2ftmp%2fsecret.txt", "//etc/passwd", "/etc/passwd", "/static/%00",
    "/static/app.js%00.txt", "/static/app.js\x00", "/static/./app.js/../../secret.txt", "/api/../static/../secret.txt",
    "/model/../secret.txt", "/static/outside", "/static/", "/static/vendor", "http://127.0.0.1/static/../secret.txt",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_no_spelling_of_a_path_reaches_a_file_outside_the_static_folder(guarded, target):
    status, answer = raw_request(guarded.port, http_get(target))
    assert status in (400, 403, 404), answer[:300]
    assert SECRET not in answer and b"Traceback" not in answer
    assert raw_request(guarded.port, http_get("/static/app.js"))[0] == 200       # and it still serves


def test_symbolic_links_are_followed_to_their_real_place(guarded, tmp_path):
    # A link to a file that is inside the static folder is fine; the check is on the real path, not the name.
    (server_module.STATIC_DIR / "alias.js").symlink_to(server_module.STATIC_DIR / "app.js")
    status, answer = raw_request(guarded.port, http_get("/static/alias.js"))
    assert status == 200 and answer.endswith((server_module.STATIC_DIR / "app.js").read_bytes())


BAD_PARAMETERS = [
    ("/api/example?split=test&index=abc", "index must be a whole number"),
    ("/api/example?split=test&index=-1", "index must be a whole number"),
    ("/api/example?split=test&index=1e3", "index must be a whole number"),
    ("/api/example?split=test&index=%D9%A3", "index must be a whole number"),     # Arabic-Indic 3: int() takes it
    ("/api/example?split=test&index=" + "9" * 5000, "index must be a whole number"),
    ("/api/example?split=test&index=%00", "index must be a whole number"),
    ("/api/example?split=test&index=6", "example 6 is out of range"),
    ("/api/example?split=test&index=999999999", "out of range"),
    ("/api/example?split=nope&index=0", "no split named 'nope'"),
    ("/api/entries?split=%3Cscript%3E", "no split named '<script>'"),
    ("/api/entries?split=test&offset=-3", "offset must be a whole number"),
    ("/api/entries?split=test&limit=ten", "limit must be a whole number"),
    ("/api/entries?" + "&".join(f"p{i}=1" for i in range(40)), "more than 20 query parameters"),
]


@pytest.mark.parametrize("target, message", BAD_PARAMETERS)
def test_bad_query_parameters_get_a_one_line_400(guarded, capfd, target, message):
    guarded.quiet = False                             # log every request: the refusal is one line of it
    capfd.readouterr()
    status, answer = raw_request(guarded.port, http_get(target))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert status == 400 and b"Content-Type: application/json" in head
    error = json.loads(body)["error"]
    assert message in error and "\n" not in error and len(error) < 300
    log = capfd.readouterr().err
    assert "Traceback" not in log and len(log.splitlines()) <= 1, log


def test_an_internal_error_is_one_line_and_a_json_500(guarded, capfd, monkeypatch):
    def broken(self, split, index):
        raise RuntimeError("a bug in the visualiser")

    monkeypatch.setattr(VizData, "example", broken)
    capfd.readouterr()
    status, answer = raw_request(guarded.port, http_get("/api/example?index=0"))
    assert status == 500 and b'"error":"internal error (RuntimeError)' in answer and b"Traceback" not in answer
    log = capfd.readouterr().err
    assert log.count("\n") == 1 and "RuntimeError: a bug in the visualiser" in log and "Traceback" not in log
    assert raw_request(guarded.port, http_get("/api/info"))[0] == 200


def test_dataset_strings_are_json_and_never_markup(guarded):
    status, answer = raw_request(guarded.port, http_get("/api/entries?split=%3Cimg%20src=x%20onerror=alert(1)%3E"))
    head = answer.partition(b"\r\n\r\n")[0]
    assert status == 400 and b"Content-Type: application/json" in head and b"X-Content-Type-Options: nosniff" in head
    # The page's scripts put every server string in with textContent (the browser tests check an HTML
    # puzzle name stays text); no script may use an HTML sink at all.
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|srcdoc|\beval\(|new Function")
    for script in STATIC_DIR.glob("*.js"):
        assert not sinks.search(script.read_text()), script.name


def test_the_server_listens_on_loopback_unless_told_otherwise():
    server = VizServer(0, lambda: None)
    try:
        assert server.socket.getsockname()[0] == "127.0.0.1"
    finally:
        server.server_close()
    command = viz_spec()
    assert command.parse([]).host == "127.0.0.1"
    help_text = " ".join(command.help().split())
    assert "127.0.0.1" in help_text and "Loopback only" in help_text
    with pytest.raises(CommandLineExit):
        command.parse(["--host", "0.0.0.0"])


# -- property: random and mutated request targets ---------------------------------------------------

# Request targets built as a route, path segments and a query, from pieces that have broken servers
# before (climbing, encodings, NUL, backslashes, links out, huge numbers) and random characters.
ROUTES = ["static", "static/vendor", "api", "model", "", "index.html", "static/outside"]
SEGMENTS = ["..", ".", "", "%2e%2e", "%2E%2e", ".%2e", "%252e%252e", "..%2f", "..%2F..", "%2f", "..%5c", "..\\", "\\",
            "%00", "a%00b", "%", "%zz", "app.js", "index.html", "vendor", "leak.txt", "outside", "secret.txt",
            ".hidden.txt", "sudoku", "test", "model.onnx", "model.json", "info", "entries", "example", "\u00e9", "\u202e"]
KEYS = ["index", "split", "offset", "limit", "filter", "q", "x"]
VALUES = ["0", "1", "6", "-1", "1e3", "999999999", "9" * 30, "%00", "%D9%A3", "test", "train", "nope", "all",
          "failed", "solved", "<b>", "%3Cscript%3E", ""]
RANDOM = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF), max_size=4)
PATHS = st.tuples(st.sampled_from(ROUTES), st.lists(st.one_of(st.sampled_from(SEGMENTS), RANDOM), max_size=5))
QUERIES = st.lists(st.tuples(st.one_of(st.sampled_from(KEYS), RANDOM), st.one_of(st.sampled_from(VALUES), RANDOM)),
                   max_size=4)
TARGETS = st.tuples(PATHS, QUERIES).map(
    lambda t: "/" + "/".join([t[0][0], *t[0][1]]) + ("?" + "&".join(f"{k}={v}" for k, v in t[1]) if t[1] else ""))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=TARGETS)
def test_random_request_targets_never_fail_or_leak(guarded, target):
    status, answer = raw_request(guarded.port, http_get(target))
    assert status is not None and 200 <= status < 500, (target, answer[:300])
    assert SECRET not in answer and b"Traceback" not in answer
    assert raw_request(guarded.port, http_get("/api/info"))[0] == 200          # and it goes on answering

