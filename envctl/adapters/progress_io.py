"""Counting the bytes of downloads for progress reports (the build's fetches)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import IO

from envctl.core.build_parts import Downloader
from envctl.core.progress import Progress


class CountingDownloader:
    """A ``Downloader`` that reports each file's bytes as they are read (the build's fetches)."""

    def __init__(self, inner: Downloader, progress: Progress) -> None:
        self.inner = inner
        self.progress = progress

    @contextlib.contextmanager
    def open(self, url: str, what: str, offset: int = 0) -> Iterator[IO[bytes]]:
        """The inner downloader's stream from byte ``offset``, counted under the item ``what``."""
        with self.inner.open(url, what, offset) as stream:
            self.progress.item_started(what, _length(stream))
            try:
                yield _Counted(stream, what, self.progress)  # type: ignore[misc]
            except BaseException:
                self.progress.item_finished(what, "failed")
                raise
            self.progress.item_finished(what, "downloaded")


class _Counted:
    """A read-only stream that reports what passes through ``read``."""

    def __init__(self, stream: IO[bytes], item: str, progress: Progress) -> None:
        self._stream, self._item, self._progress = stream, item, progress

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if data:
            self._progress.item_bytes(self._item, len(data))
        return data

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


def _length(stream: IO[bytes]) -> int:
    """The stream's size when it tells (an HTTP response's Content-Length, a file's size), else 0."""
    # an HTTP response tells its length; a buffered reader over one, through its raw stream
    for candidate in (stream, getattr(stream, "raw", None)):
        length = getattr(candidate, "length", None)
        if isinstance(length, int):
            return length
    try:
        if stream.seekable():
            here = stream.tell()
            end = stream.seek(0, os.SEEK_END)
            stream.seek(here)
            return end - here
    except (AttributeError, OSError, ValueError):
        pass
    return 0
