"""Read project file lists and wheel metadata from a PEP 691 simple index (PyPI by default).

Stdlib only (urllib), no cache: ``envctl matrix refresh`` wants what the index says now.
Metadata comes from the PEP 658 ``<wheel>.metadata`` file; where the index has none for a wheel
(some mirrors serve only part of them) the METADATA member is read out of the remote wheel with
HTTP range requests, so a 900 MB wheel costs a few hundred kilobytes.
Transient failures (a connection error, 5xx, 429) are retried with backoff (``http_transfer``).
Every failure becomes a ``TransportError`` that names the URL.
"""

from __future__ import annotations

import http.client
import io
import json
import urllib.error
import urllib.request
import zipfile
from typing import Any

from envctl.adapters.http_transfer import DEFAULT_POLICY, RetryPolicy, with_retries
from envctl.core.names import decimal
from envctl.core.wheel_facts import IndexFile
from envctl.errors import NotFoundError, TransportError

PYPI_SIMPLE = "https://pypi.org/simple"
_JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"
_USER_AGENT = "envctl-matrix-refresh"
_BLOCK = 512 * 1024  # range-request granularity when reading inside a remote wheel


class PyPIClient:
    """A PEP 691 index client; implements the ``WheelIndex`` protocol of services.refresh."""

    def __init__(
        self, index_url: str = PYPI_SIMPLE, timeout: float = 60.0, policy: RetryPolicy = DEFAULT_POLICY
    ) -> None:
        self.index_url = index_url.rstrip("/")
        self.timeout = timeout
        self.policy = policy

    def _read(self, request: urllib.request.Request) -> tuple[bytes, int, str]:
        """Body, status and Content-Range of one GET, tried again when the failure is transient."""

        def once() -> tuple[bytes, int, str]:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read(), response.status, response.headers.get("Content-Range", "")

        return with_retries(once, self.policy)

    def project_files(self, project: str) -> list[IndexFile]:
        """Every file the index lists for ``project``, yanked ones flagged."""
        url = f"{self.index_url}/{project}/"
        raw = self._get(url, {"Accept": _JSON_ACCEPT})
        try:
            page: dict[str, Any] = json.loads(raw)
            return [
                IndexFile(
                    filename=str(entry["filename"]),
                    url=str(entry["url"]),
                    requires_python=entry.get("requires-python") or None,
                    yanked=bool(entry.get("yanked", False)),
                )
                for entry in page["files"]
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise TransportError(url, f"not a PEP 691 JSON project page: {exc}") from exc

    def wheel_metadata(self, file: IndexFile) -> str:
        """The core metadata (METADATA) of one wheel, as text."""
        try:
            raw = self._get(file.url + ".metadata")
        except NotFoundError:
            raw = self.read_wheel_member(file, ".dist-info/METADATA")
        return raw.decode("utf-8", errors="replace")

    def read_wheel_member(self, file: IndexFile, suffix: str) -> bytes:
        """One member of a remote wheel (the first whose name ends with ``suffix``)."""
        remote = _RangeFile(self, file.url)
        try:
            with zipfile.ZipFile(remote) as archive:
                names = [n for n in archive.namelist() if n.endswith(suffix)]
                if not names:
                    raise TransportError(file.url, f"wheel has no member ending in {suffix}")
                return archive.read(min(names, key=len))
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise TransportError(file.url, f"cannot read the wheel: {exc}") from exc

    def _get(self, url: str, headers: dict[str, str] | None = None) -> bytes:
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT, **(headers or {})})
        try:
            return self._read(request)[0]
        except urllib.error.HTTPError as exc:
            cls = NotFoundError if exc.code == 404 else TransportError
            raise cls(url, f"HTTP {exc.code} {exc.reason}", hint="check the index URL") from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise TransportError(
                url, f"cannot reach the index: {reason}", hint="refresh needs network access"
            ) from exc

    def get_range(self, url: str, start: int, end: int) -> tuple[bytes, int]:
        """Bytes ``start..end`` (inclusive) of ``url`` and the resource's total size."""
        request = urllib.request.Request(
            url, headers={"User-Agent": _USER_AGENT, "Range": f"bytes={start}-{end}"}
        )
        try:
            data, status, content_range = self._read(request)
            total = content_range.rpartition("/")[2]
        except urllib.error.HTTPError as exc:
            raise TransportError(url, f"HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise TransportError(url, f"cannot reach the index: {exc}") from exc
        size = decimal(total)
        if status != 206 or size is None:
            raise TransportError(url, "the server does not answer range requests")
        return data, size


class _RangeFile(io.RawIOBase):
    """A read-only, seekable view of a remote file, fetched in blocks on demand."""

    def __init__(self, client: PyPIClient, url: str) -> None:
        super().__init__()
        self._client = client
        self._url = url
        self._pos = 0
        self._blocks: dict[int, bytes] = {}
        first, self._size = client.get_range(url, 0, 0)
        del first

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self._size - self._pos)
        done = 0
        while done < wanted:
            index, within = divmod(self._pos, _BLOCK)
            block = self._block(index)
            chunk = block[within : within + wanted - done]
            if not chunk:
                break
            view[done : done + len(chunk)] = chunk
            done += len(chunk)
            self._pos += len(chunk)
        return done

    def _block(self, index: int) -> bytes:
        if index not in self._blocks:
            start = index * _BLOCK
            end = min(self._size, start + _BLOCK) - 1
            self._blocks[index], _total = self._client.get_range(self._url, start, end)
        return self._blocks[index]
