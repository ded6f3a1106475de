"""PyPIClient against a real HTTP server on loopback that speaks PEP 691 and range requests."""

from __future__ import annotations

import io
import json
import random
import socket
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from envctl.adapters.http_transfer import RetryPolicy
from envctl.adapters.pypi import PyPIClient
from envctl.errors import TransportError

FAST = RetryPolicy(wait_initial_s=0, wait_max_s=0, wait_jitter_s=0)

METADATA = "Metadata-Version: 2.1\nName: demo\nVersion: {v}\nRequires-Python: >=3.10\n"


def wheel_bytes(version: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        # 1.5 MB of incompressible data: METADATA lies several range blocks away from the start
        zf.writestr("demo/_native.so", random.Random(0).randbytes(1_500_000))
        zf.writestr(f"demo-{version}.dist-info/METADATA", METADATA.format(v=version))
        zf.writestr(f"demo-{version}.dist-info/RECORD", "")
    return buf.getvalue()


class Handler(BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}
    ranges_served = 0
    failures: ClassVar[list[int]] = []  # statuses to answer first, one per request
    asked = 0

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        type(self).asked += 1
        if self.failures:
            self.send_error(self.failures.pop(0))
            return
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        header = self.headers.get("Range")
        if header:
            start, end = (int(x) for x in header.removeprefix("bytes=").split("-"))
            chunk = body[start : end + 1]
            type(self).ranges_served += 1
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{start + len(chunk) - 1}/{len(body)}")
        else:
            chunk = body
            self.send_response(200)
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        self.wfile.write(chunk)


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    page = {
        "meta": {"api-version": "1.1"},
        "name": "demo",
        "files": [
            {"filename": "demo-1.0-py3-none-any.whl", "url": f"{base}/f/demo-1.0-py3-none-any.whl",
             "requires-python": ">=3.10", "yanked": False},
            {"filename": "demo-2.0-py3-none-any.whl", "url": f"{base}/f/demo-2.0-py3-none-any.whl",
             "yanked": "broken build"},
        ],
    }  # fmt: skip
    Handler.files = {
        "/simple/demo/": json.dumps(page).encode(),
        "/simple/html/": b"<html>not json</html>",
        "/f/demo-1.0-py3-none-any.whl.metadata": METADATA.format(v="1.0").encode(),
        "/f/demo-1.0-py3-none-any.whl": wheel_bytes("1.0"),
        "/f/demo-2.0-py3-none-any.whl": wheel_bytes("2.0"),  # no .metadata beside it
    }
    Handler.ranges_served = 0
    Handler.failures = []
    Handler.asked = 0
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_project_files_reads_the_json_page(server: str) -> None:
    files = PyPIClient(f"{server}/simple", timeout=5).project_files("demo")
    assert [(f.filename, f.requires_python, f.yanked) for f in files] == [
        ("demo-1.0-py3-none-any.whl", ">=3.10", False),
        ("demo-2.0-py3-none-any.whl", None, True),
    ]


def test_metadata_from_pep658_file(server: str) -> None:
    client = PyPIClient(f"{server}/simple", timeout=5)
    first = client.project_files("demo")[0]
    assert "Version: 1.0" in client.wheel_metadata(first)
    assert Handler.ranges_served == 0


def test_metadata_falls_back_to_range_requests_inside_the_wheel(server: str) -> None:
    client = PyPIClient(f"{server}/simple", timeout=5)
    second = client.project_files("demo")[1]
    assert "Version: 2.0" in client.wheel_metadata(second)
    assert 2 <= Handler.ranges_served <= 4  # size probe, tail block, maybe one more: not the wheel


def test_missing_project_names_the_url(server: str) -> None:
    with pytest.raises(TransportError, match=r"/simple/nope/: HTTP 404"):
        PyPIClient(f"{server}/simple", timeout=5).project_files("nope")


def test_a_page_that_is_not_pep691_json_is_an_error(server: str) -> None:
    with pytest.raises(TransportError, match="not a PEP 691 JSON project page"):
        PyPIClient(f"{server}/simple", timeout=5).project_files("html")


def test_unreachable_index_is_a_transport_error() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransportError, match="cannot reach the index") as exc:
        PyPIClient(f"http://127.0.0.1:{port}/simple", timeout=5, policy=FAST).project_files("demo")
    assert f"127.0.0.1:{port}" in exc.value.message


def test_transient_failures_are_retried_and_a_404_is_not(server: str) -> None:
    client = PyPIClient(f"{server}/simple", timeout=5, policy=FAST)
    Handler.failures = [503, 502]
    assert len(client.project_files("demo")) == 2 and Handler.asked == 3
    Handler.failures, Handler.asked = [429], 0
    second = client.project_files("demo")[1]
    Handler.failures = [500]
    assert "Version: 2.0" in client.wheel_metadata(second)  # range requests retried too
    Handler.asked = 0
    with pytest.raises(TransportError, match="HTTP 404"):
        client.project_files("nope")
    assert Handler.asked == 1
