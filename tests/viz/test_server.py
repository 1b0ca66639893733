"""The visualiser's HTTP server and JSON API, without a browser."""
from __future__ import annotations

import http.client
import json

import numpy as np
import pytest

from viz_fixtures import HTML_NAME
from hrm.viz.data import VizData
from hrm.viz.server import VizServer


def get(server, path: str, host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = {"Host": host} if host else {}
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, dict(response.headers), body


def get_json(server, path: str) -> tuple[int, dict]:
    status, _, body = get(server, path)
    return status, json.loads(body)


def test_api_describes_the_dataset_and_predictions(serve, sudoku_dataset, sudoku_predictions):
    server = serve(lambda: VizData(sudoku_dataset, sudoku_predictions))
    status, info = get_json(server, "/api/info")
    assert status == 200
    assert info["task"] == "sudoku" and info["splits"] == {"train": 2, "test": 6} and info["default_split"] == "test"
    assert info["predictions"]["rows"] == 6 and info["predictions"]["num_steps"] == 4
    assert info["style"]["box"] == [3, 3] and info["style"]["tokens"]["5"]["text"] == "4"
    assert info["model"] is None

    _, page = get_json(server, "/api/entries?split=test&filter=all&offset=2&limit=3")
    assert page["total"] == 6 and [e["index"] for e in page["entries"]] == [2, 3, 4]
    _, failed = get_json(server, "/api/entries?split=test&filter=failed")
    assert [e["index"] for e in failed["entries"]] == [1, 4] and {e["status"] for e in failed["entries"]} == {"failed"}
    _, train = get_json(server, "/api/entries?split=train")
    assert train["total"] == 2 and train["entries"][0]["status"] is None     # predictions are for test only

    _, example = get_json(server, "/api/example?split=test&index=4")
    inputs = np.load(sudoku_dataset / "test" / "all__inputs.npy")
    assert example["inputs"] == inputs[4].tolist() and example["view"] == [0, 0, 9, 9]
    assert len(example["prediction"]["steps"]) == 4 and example["prediction"]["exact"] is False


def test_api_errors_are_json_with_a_message(serve, sudoku_dataset):
    server = serve(lambda: VizData(sudoku_dataset))
    status, body = get_json(server, "/api/example?split=test&index=6")
    assert status == 400 and "example 6 is out of range" in body["error"]
    status, body = get_json(server, "/api/entries?split=validation")
    assert status == 400 and "no split named 'validation'" in body["error"]
    status, body = get_json(server, "/api/entries?filter=maybe")
    assert status == 400 and "unknown filter" in body["error"]
    status, body = get_json(server, "/model/model.onnx")
    assert status == 404 and "--model" in body["error"]


def test_a_dataset_that_fails_to_load_is_reported_by_the_api(serve, sudoku_dataset):
    (sudoku_dataset / "identifiers.json").write_text("{not json")
    server = serve(lambda: VizData(sudoku_dataset))
    status, body = get_json(server, "/api/info")
    assert status == 422 and "identifiers.json: malformed JSON at line 1, column 2" in body["error"]


def test_names_are_searchable_and_returned_verbatim(serve, arc_dataset):
    server = serve(lambda: VizData(arc_dataset))
    _, page = get_json(server, "/api/entries?split=test&q=onerror")
    assert [e["name"] for e in page["entries"]] == [HTML_NAME]
    _, info = get_json(server, "/api/info")
    assert info["task"] == "arc" and info["style"]["tokens"]["2"]["colour"] == "#000000"
    assert info["style"]["tokens"]["11"]["colour"] == "#870C25"


def test_static_files_types_and_headers(serve, sudoku_dataset):
    server = serve(lambda: VizData(sudoku_dataset))
    status, headers, body = get(server, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"app.js" in body
    assert "script-src 'self' 'wasm-unsafe-eval'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    status, headers, body = get(server, "/static/vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm")
    assert status == 200 and headers["Content-Type"] == "application/wasm" and body[:4] == b"\0asm"
    status, headers, _ = get(server, "/static/vendor/onnxruntime-web/ort.wasm.min.mjs")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")


@pytest.mark.parametrize("path", ["/static/../server.py", "/static/%2e%2e/server.py", "/static/..%2fdata.py",
                                  "/static/", "/static/vendor", "/etc/passwd"])
def test_nothing_outside_the_static_folder_is_served(serve, sudoku_dataset, path):
    server = serve(lambda: VizData(sudoku_dataset))
    status, _, body = get(server, path)
    assert status == 404 and b"import" not in body


def test_only_loopback_host_names_are_answered(serve, sudoku_dataset):
    server = serve(lambda: VizData(sudoku_dataset))
    assert get(server, "/api/info", host="attacker.example:8765")[0] == 403
    assert get(server, "/api/info", host=f"localhost:{server.port}")[0] == 200
    assert get(server, "/api/info", host=f"[::1]:{server.port}")[0] == 200
    with pytest.raises(ValueError, match="loopback only"):
        VizServer(0, lambda: None, host="0.0.0.0")


def test_model_only_server_and_non_finite_numbers(serve, sudoku_dataset, tmp_path):
    from hrm.viz.server import ServedModel

    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"onnx bytes")
    server = serve(lambda: None, ServedModel(onnx, {"task": "sudoku", "q": float("nan")}))
    status, info = get_json(server, "/api/info")
    assert status == 200 and info["browse"] is False and info["model"] == {"task": "sudoku", "q": None}
    status, headers, body = get(server, "/model/model.onnx")
    assert status == 200 and body == b"onnx bytes"
