"""GETs that survive a flaky network: retries with backoff, and bodies resumed with ``Range``.

Retries go through stamina (exponential backoff with jitter, bounded in tries and in time). Only
what a second try can fix is retried: a connection refused, reset or timed out, a body cut short,
a 5xx, and a 429 (after the wait its ``Retry-After`` asks for, unless that is too long). Any other
4xx never is: a wrong password or a missing file stays wrong, and a retry would only hide it.

A body cut short is resumed from the byte where it stopped (``Range: bytes=N-``, with ``If-Range``
when the server named a validator). A server that ignores the range answers with the whole file;
it is then read again from its first byte, the N bytes already delivered skipped, so the reader
sees one unbroken stream either way. The caller verifies the digest of what it read, so a file
that changed between two tries is refused, never mixed into the cache.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import http.client
import io
import socket
import ssl
import time
import urllib.error
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Response(Protocol):
    """What ``urllib.request.urlopen`` returns, as far as a transfer needs it."""

    status: int
    headers: Any  # email.message.Message

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


#: sends one GET of the resource with these extra headers (``Range``, ``If-Range``)
Opener = Callable[[Mapping[str, str]], Response]


class BodyCutShort(ConnectionError):
    """The connection ended before the body's announced length: worth resuming."""


class BodyChanged(OSError):
    """A resumed body is not the one that was being read (another length, a range elsewhere)."""


class GaveUp(OSError):
    """A body broke off more often than the policy allows."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one request tries; every bound applies to each request on its own."""

    attempts: int = 4  # tries of one request (or of one resumed read), the first included
    timeout_s: float = 60.0  # most time the tries of one request may take, waits included
    wait_initial_s: float = 0.5
    wait_max_s: float = 8.0
    wait_jitter_s: float = 0.5
    max_resumes: int = 20  # a body broken off more often than this is given up
    max_retry_after_s: float = 60.0  # a 429/503 asking for a longer wait is reported, not waited


DEFAULT_POLICY = RetryPolicy()
_RETRIED_STATUS = frozenset({429, 500, 502, 503, 504})


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta seconds or an HTTP date); None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def should_retry(exc: Exception, policy: RetryPolicy = DEFAULT_POLICY) -> bool | float:
    """stamina's hook: False for what a retry cannot fix, else True or the seconds to wait."""
    if isinstance(exc, urllib.error.HTTPError):
        if exc.code not in _RETRIED_STATUS:
            return False
        wait = retry_after_s(exc.headers.get("Retry-After") if exc.headers else None)
        if wait is None:
            return True
        return wait if wait <= policy.max_retry_after_s else False
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        return isinstance(reason, OSError) and _transient(reason)
    if isinstance(exc, (BodyChanged, GaveUp)):
        return False
    if isinstance(exc, (http.client.HTTPException, OSError)):
        return _transient(exc)
    return False


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return False  # a wrong certificate stays wrong
    if isinstance(exc, socket.gaierror):
        return exc.errno not in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME))
    return isinstance(exc, (OSError, http.client.HTTPException))


@functools.cache
def _stamina() -> Any:
    import stamina
    import stamina.instrumentation

    # its default hook logs each retry through `logging` (to stderr when nothing is configured);
    # only the CLI prints, and a retry that works is not news
    stamina.instrumentation.set_on_retry_hooks([])
    return stamina


def retry_context(policy: RetryPolicy) -> Any:
    """stamina's retry context (``for attempt in ...: with attempt: ...``) for ``policy``."""
    return _stamina().retry_context(
        on=functools.partial(should_retry, policy=policy),
        attempts=policy.attempts,
        timeout=policy.timeout_s,
        wait_initial=policy.wait_initial_s,
        wait_max=policy.wait_max_s,
        wait_jitter=policy.wait_jitter_s,
    )


def with_retries(call: Callable[[], T], policy: RetryPolicy = DEFAULT_POLICY) -> T:
    """``call()``, tried again after what ``should_retry`` accepts; else its last error."""
    for attempt in retry_context(policy):
        with attempt:
            return call()
    raise AssertionError("stamina ended without a result or an error")  # pragma: no cover


class ResumingBody(io.RawIOBase):
    """The body of one GET as a readable stream that outlives dropped connections.

    Opening sends the request (with retries), from byte ``start`` when an earlier run already
    holds the bytes before it; a read resumes with ``Range`` after a broken connection. Errors are the underlying library's (HTTPError, URLError, OSError,
    HTTPException) or BodyChanged / GaveUp, for the caller to translate.
    """

    def __init__(self, opener: Opener, policy: RetryPolicy = DEFAULT_POLICY, start: int = 0) -> None:
        super().__init__()
        self._opener = opener
        self._policy = policy
        self._position = start  # > 0: what an earlier run kept; the first request asks from there
        self._resumes = 0
        self.length: int | None = None
        self._validator: str | None = None
        self._response: Response | None = with_retries(self._open_here, policy)

    @property
    def position(self) -> int:
        """Bytes delivered so far."""
        return self._position

    @property
    def resumes(self) -> int:
        """How often the body was opened again after a broken connection."""
        return self._resumes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` with the next bytes of the body; 0 at its end."""
        view = memoryview(buffer).cast("B")
        for attempt in retry_context(self._policy):
            with attempt:
                chunk = self._read_once(len(view))
                view[: len(chunk)] = chunk
                return len(chunk)
        raise AssertionError("stamina ended without a result or an error")  # pragma: no cover

    def _read_once(self, size: int) -> bytes:
        if self._response is None:
            self._reopen()
        assert self._response is not None
        try:
            chunk = self._response.read(size)
            if not chunk and size and self.length is not None and self._position < self.length:
                raise BodyCutShort(f"connection closed after {self._position} of {self.length} bytes")
        except BaseException:
            self._drop()
            raise
        self._position += len(chunk)
        return chunk

    def _reopen(self) -> None:
        if self._resumes >= self._policy.max_resumes:
            raise GaveUp(f"broken off {self._resumes} times, at byte {self._position}; given up")
        self._resumes += 1
        self._response = self._open_here()

    def _open_here(self) -> Response:
        """A response whose body goes on from ``position``: a 206, or a 200 read up to there."""
        first = self.length is None and self._validator is None
        headers: dict[str, str] = {}
        if self._position:
            headers["Range"] = f"bytes={self._position}-"
            if self._validator:
                headers["If-Range"] = self._validator
        try:
            response = self._opener(headers)
        except urllib.error.HTTPError as exc:
            if exc.code != 416 or not self._position:
                raise
            exc.close()
            raise BodyChanged(f"the server has no bytes from {self._position} on (416)") from exc
        try:
            if response.status == 206 and self._position:
                start, total = _content_range(response.headers.get("Content-Range"))
                if start != self._position or (self.length is not None and total != self.length):
                    raise BodyChanged(f"asked for bytes from {self._position}, got a range elsewhere")
                length = total
            else:
                # no range asked, or it was ignored (or the file changed): the whole body again
                length = _content_length(response)
                if self.length is not None and length not in (None, self.length):
                    raise BodyChanged("the file's length changed between two tries")
                _skip(response, self._position)
        except BaseException:
            response.close()
            raise
        if first:
            self.length, self._validator = length, _validator(response)
        return response

    def _drop(self) -> None:
        if self._response is not None:
            with contextlib.suppress(OSError):
                self._response.close()
            self._response = None

    def close(self) -> None:
        """Close the connection in use, if any."""
        self._drop()
        super().close()


def _skip(response: Response, count: int) -> None:
    while count:
        chunk = response.read(min(count, 1 << 20))
        if not chunk:
            raise BodyCutShort(f"connection closed while skipping to byte {count}")
        count -= len(chunk)


def _content_length(response: Response) -> int | None:
    value = (response.headers.get("Content-Length") or "").strip()
    return int(value) if value.isdigit() else None


def _content_range(value: str | None) -> tuple[int, int | None]:
    """``bytes START-END/TOTAL`` -> (START, TOTAL or None); BodyChanged when unreadable."""
    unit, _, rest = (value or "").strip().partition(" ")
    span, _, total = rest.partition("/")
    start = span.partition("-")[0]
    if unit != "bytes" or not start.isdigit():
        raise BodyChanged(f"unreadable Content-Range {(value or '')[:80]!r}")
    return int(start), int(total) if total.isdigit() else None


def _validator(response: Response) -> str | None:
    """A strong ETag, else Last-Modified: what If-Range may name."""
    etag = (response.headers.get("ETag") or "").strip()
    if etag and not etag.startswith("W/"):
        return etag
    return (response.headers.get("Last-Modified") or "").strip() or None
