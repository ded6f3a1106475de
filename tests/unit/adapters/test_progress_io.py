"""The build's counting downloader: each file's size and bytes reach the progress, failures too."""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from envctl.adapters.progress_io import CountingDownloader

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))
from progress_recorder import RecordingProgress

DATA = b"x" * 100_000


class _Raw(io.RawIOBase):
    """An unseekable body that tells its length, as an HTTP response (or a resuming one) does."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos, self.length = data, 0, len(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._data[self._pos : self._pos + len(buffer)]
        buffer[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


class _Downloader:
    def __init__(self, make: type[io.BytesIO] | None = None) -> None:
        self.make = make

    @contextlib.contextmanager
    def open(self, url: str, what: str, offset: int = 0) -> Iterator[IO[bytes]]:
        if self.make is io.BytesIO:
            yield io.BytesIO(DATA)
        else:
            yield io.BufferedReader(_Raw(DATA), 8192)  # type: ignore[arg-type]


def _read_all(stream: IO[bytes]) -> int:
    n = 0
    while chunk := stream.read(8192):
        n += len(chunk)
    return n


@pytest.mark.parametrize("make", [io.BytesIO, None], ids=["seekable file", "buffered HTTP body"])
def test_every_byte_and_the_size_are_reported(make: type[io.BytesIO] | None) -> None:
    progress = RecordingProgress()
    with CountingDownloader(_Downloader(make), progress).open("https://x/numpy.whl", "numpy 2.1") as s:
        assert _read_all(s) == len(DATA)
    assert progress.totals == {"numpy 2.1": len(DATA)}
    assert progress.bytes == {"numpy 2.1": len(DATA)}
    assert progress.finished == {"numpy 2.1": "downloaded"}


def test_a_failed_download_is_reported_as_failed() -> None:
    progress = RecordingProgress()
    with (
        pytest.raises(OSError, match="reset"),
        CountingDownloader(_Downloader(), progress).open("https://x/a.whl", "a 1") as stream,
    ):
        stream.read(10)
        raise OSError("connection reset")
    assert progress.finished == {"a 1": "failed"} and progress.bytes == {"a 1": 10}
