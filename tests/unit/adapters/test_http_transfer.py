"""Retries only what a second try can fix; bodies resume where a connection broke."""

from __future__ import annotations

import email.message
import email.utils
import http.client
import io
import ssl
import urllib.error
from collections.abc import Mapping

import pytest

from envctl.adapters.http_transfer import (
    BodyChanged,
    BodyCutShort,
    GaveUp,
    ResumingBody,
    RetryPolicy,
    retry_after_s,
    should_retry,
    with_retries,
)

FAST = RetryPolicy(attempts=4, wait_initial_s=0, wait_max_s=0, wait_jitter_s=0, max_resumes=5)
DATA = bytes(range(256)) * 40  # 10,240 bytes


def _http_error(code: int, retry_after: str | None = None) -> urllib.error.HTTPError:
    headers = email.message.Message()
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return urllib.error.HTTPError("http://127.0.0.1/x", code, "msg", headers, io.BytesIO(b""))


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_http_error(503), True),
        (_http_error(502), True),
        (_http_error(429), True),
        (_http_error(429, "3"), 3.0),
        (_http_error(503, "3600"), False),  # longer than max_retry_after_s: reported, not waited
        (_http_error(401), False),
        (_http_error(403), False),
        (_http_error(404), False),
        (_http_error(416), False),
        (_http_error(501), False),
        (urllib.error.URLError(ConnectionRefusedError(111, "refused")), True),
        (urllib.error.URLError(TimeoutError("timed out")), True),
        (urllib.error.URLError(ssl.SSLCertVerificationError("bad cert")), False),
        (ConnectionResetError(104, "reset"), True),
        (http.client.IncompleteRead(b"", 10), True),
        (BodyCutShort("short"), True),
        (BodyChanged("changed"), False),
        (GaveUp("too often"), False),
        (ValueError("a bug"), False),
    ],
)
def test_what_is_retried(exc: Exception, expected: bool | float) -> None:
    assert should_retry(exc) == expected


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after_s("7") == 7.0
    assert retry_after_s(None) is None and retry_after_s("soon") is None
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert retry_after_s(date, now=1_000_000) == pytest.approx(30)
    assert retry_after_s(date, now=2_000_000) == 0.0


def test_a_503_is_tried_again_and_a_401_is_not() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _http_error(503)
        return "ok"

    assert with_retries(flaky, FAST) == "ok" and len(calls) == 3

    def refused() -> str:
        calls.append(1)
        raise _http_error(401)

    calls.clear()
    with pytest.raises(urllib.error.HTTPError):
        with_retries(refused, FAST)
    assert len(calls) == 1


def test_tries_are_bounded() -> None:
    calls: list[int] = []

    def down() -> str:
        calls.append(1)
        raise urllib.error.URLError(ConnectionRefusedError(111, "refused"))

    with pytest.raises(urllib.error.URLError):
        with_retries(down, FAST)
    assert len(calls) == FAST.attempts


class FakeResponse:
    """An HTTP response whose body may stop early (``cut``): the connection closes cleanly."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str], cut: int | None = None) -> None:
        self.status = status
        self.headers = email.message.Message()
        for key, value in headers.items():
            self.headers[key] = value
        self._body = io.BytesIO(body[:cut] if cut is not None else body)
        self.closed = False

    def read(self, size: int = -1, /) -> bytes:
        return self._body.read(size)

    def close(self) -> None:
        self.closed = True


class FakeServer:
    """Serves DATA; the n-th answer may be cut, answer an error, ignore Range or change the file."""

    def __init__(self, plan: list[dict[str, object]], ranges: bool = True) -> None:
        self.plan = plan
        self.ranges = ranges
        self.asked: list[dict[str, str]] = []

    def __call__(self, headers: Mapping[str, str]) -> FakeResponse:
        self.asked.append(dict(headers))
        step = self.plan[len(self.asked) - 1] if len(self.asked) <= len(self.plan) else {}
        if "error" in step:
            raise _http_error(int(step["error"]))  # type: ignore[call-overload]
        data = step.get("data", DATA)
        assert isinstance(data, bytes)
        cut = step.get("cut")
        wanted = headers.get("Range")
        if wanted and self.ranges:
            start = int(wanted.removeprefix("bytes=").removesuffix("-"))
            start = int(step.get("start", start))  # type: ignore[call-overload]
            header = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}", "ETag": '"v1"'}
            header["Content-Length"] = str(len(data) - start)
            return FakeResponse(206, data[start:], header, cut)  # type: ignore[arg-type]
        return FakeResponse(200, data, {"Content-Length": str(len(data)), "ETag": '"v1"'}, cut)  # type: ignore[arg-type]


def _read_all(body: ResumingBody) -> bytes:
    return io.BufferedReader(body, 1000).read()


def test_a_cut_body_resumes_with_range_and_if_range() -> None:
    server = FakeServer([{"cut": 3000}, {"cut": 2000}])
    with ResumingBody(server, FAST) as body:
        assert _read_all(body) == DATA
        assert body.resumes == 2
    assert server.asked == [
        {},
        {"Range": "bytes=3000-", "If-Range": '"v1"'},
        {"Range": "bytes=5000-", "If-Range": '"v1"'},
    ]


def test_a_server_that_ignores_range_is_read_again_from_the_start() -> None:
    server = FakeServer([{"cut": 4000}, {"cut": 6000}], ranges=False)
    with ResumingBody(server, FAST) as body:
        assert _read_all(body) == DATA
    assert len(server.asked) == 3


def test_a_503_while_resuming_is_retried() -> None:
    server = FakeServer([{"cut": 100}, {"error": 503}, {}])
    with ResumingBody(server, FAST) as body:
        assert _read_all(body) == DATA


def test_a_404_while_resuming_is_not() -> None:
    server = FakeServer([{"cut": 100}, {"error": 404}])
    with ResumingBody(server, FAST) as body, pytest.raises(urllib.error.HTTPError):
        _read_all(body)
    assert len(server.asked) == 2


def test_a_file_that_changed_length_is_refused() -> None:
    server = FakeServer([{"cut": 100}, {"data": DATA + b"more"}], ranges=False)
    with ResumingBody(server, FAST) as body, pytest.raises(BodyChanged, match="length changed"):
        _read_all(body)


def test_a_range_elsewhere_is_refused() -> None:
    server = FakeServer([{"cut": 100}, {"start": 0}])
    with ResumingBody(server, FAST) as body, pytest.raises(BodyChanged, match="range elsewhere"):
        _read_all(body)


def test_resumes_are_bounded() -> None:
    server = FakeServer([{"cut": 10 * (i + 1)} for i in range(50)])
    with ResumingBody(server, FAST) as body, pytest.raises(GaveUp, match="5 times"):
        _read_all(body)
    assert len(server.asked) == 1 + FAST.max_resumes


def test_a_body_can_start_where_an_earlier_run_stopped() -> None:
    server = FakeServer([{"cut": 2000}])
    with ResumingBody(server, FAST, start=3000) as body:
        assert _read_all(body) == DATA[3000:]
        assert body.length == len(DATA) and body.position == len(DATA)
    assert server.asked == [{"Range": "bytes=3000-"}, {"Range": "bytes=5000-", "If-Range": '"v1"'}]


def test_a_start_the_server_ignores_skips_to_it() -> None:
    with ResumingBody(FakeServer([], ranges=False), FAST, start=3000) as body:
        assert _read_all(body) == DATA[3000:]


def test_a_start_past_the_end_is_a_changed_body() -> None:
    server = FakeServer([{"error": 416}])
    with pytest.raises(BodyChanged, match="no bytes from 20000 on"):
        ResumingBody(server, FAST, start=20000)
    assert len(server.asked) == 1
