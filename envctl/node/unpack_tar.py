"""Reading a layer's tar as a stream, with every member's headers bounded, and writing a
member's bytes with its holes left as holes.

Standard library only (it travels to nodes in the agent bundle). A few bytes of gzip must not
become gigabytes in memory (a pax header, a long name or a sparse map is read through a bounded
window, and a chain of extended headers is cut short), nor gigabytes on disk (runs of zeros and a
sparse member's holes are seeked over, never written).
"""

from __future__ import annotations

import os
import tarfile
from typing import Any

MAX_HEADER = 1 << 20  # bytes tarfile may read for one member's headers (pax, long names, sparse maps)
MAX_HEADER_CHAIN = 32  # extended headers in a row before one member (tarfile recurses on each)
CHUNK = 1 << 20


class _Window:
    """A member's header reads, bounded: a few bytes of gzip must not become gigabytes of
    pax header, long name or sparse map in memory."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.left = inner, MAX_HEADER
        self.chain = 0  # extended headers seen so far for this member

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or n > self.left:
            raise tarfile.HeaderError(f"a member's headers exceed {MAX_HEADER} bytes")
        self.left -= n
        data: bytes = self.inner.read(n)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class BoundedHeader(tarfile.TarInfo):
    """tarfile's member with its header processing bounded (``_proc_member`` is tarfile's
    documented override point)."""

    def _proc_member(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
        if isinstance(tar.fileobj, _Window):  # an extended header's next header
            tar.fileobj.chain += 1
            if tar.fileobj.chain > MAX_HEADER_CHAIN:
                raise tarfile.HeaderError(f"more than {MAX_HEADER_CHAIN} extended headers in a row")
            return super()._proc_member(tar)  # type: ignore[misc, no-any-return]
        inner = tar.fileobj
        tar.fileobj = _Window(inner)  # type: ignore[assignment]
        try:
            return super()._proc_member(tar)  # type: ignore[misc, no-any-return]
        finally:
            tar.fileobj = inner


def _copy(source: Any, fd: int, size: int) -> None:
    """``size`` bytes from ``source`` to ``fd``, runs of zeros seeked over (left as holes)."""
    left = size
    while left > 0:
        chunk = source.read(min(CHUNK, left))
        if not chunk:
            raise tarfile.ReadError("unexpected end of data")
        left -= len(chunk)
        if chunk.count(0) == len(chunk):
            os.lseek(fd, len(chunk), os.SEEK_CUR)
            continue
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view) :]


def write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, fd: int) -> None:
    """A regular member's bytes to ``fd``. A sparse member's data regions are read from the
    archive (stored one after the other) to their offsets: its holes are skipped, never
    generated, so a 2 GB hole costs nothing."""
    if member.sparse is None:
        source = tar.extractfile(member)
        assert source is not None
        _copy(source, fd, member.size)
    else:
        stream: Any = tar.fileobj
        stream.seek(member.offset_data)  # forward only, as a stream allows
        regions: list[tuple[int, int]] = list(member.sparse)  # type: ignore[arg-type]  # (offset, size)
        for offset, numbytes in regions:
            if offset < 0 or numbytes < 0 or offset + numbytes > member.size:
                raise ValueError(f"sparse region {offset}+{numbytes} outside the file's {member.size} bytes")
            os.lseek(fd, offset, os.SEEK_SET)
            _copy(stream, fd, numbytes)
    os.ftruncate(fd, member.size)
