"""Deterministic layer tarballs: same tree in, same bytes out, on any machine.

Entries are sorted, every mtime is the one given, owners are root with empty names, the format is
PAX, and the gzip header carries neither a file name nor a time. The uncompressed tar's digest
(the diff_id) and the compressed blob's digest are computed in the same pass that writes it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from envctl.adapters.blob_cache import BlobCache

#: fixed, so the compressed bytes (and digests) never depend on a default that may change
COMPRESS_LEVEL = 6


@dataclass(frozen=True)
class LayerBlob:
    """A layer written into the blob cache."""

    digest: str  # sha256:<hex> of the gzip blob
    diff_id: str  # sha256:<hex> of the tar inside
    size: int  # bytes of the gzip blob
    files: int  # regular files in it
    unpacked: int  # bytes of regular files


class _HashingWriter:
    """A write-only file object that hashes and counts what passes through it."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        self.inner.write(data)
        return len(data)

    def flush(self) -> None:
        self.inner.flush()


def _walk_from(stack: list[tuple[str, Path]]) -> Iterator[tuple[str, Path]]:
    relative, directory = stack.pop()
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        rel = f"{relative}{entry.name}"
        path = Path(entry.path)
        yield rel, path
        if entry.is_dir(follow_symlinks=False):
            stack.append((rel + "/", path))
            yield from _walk_from(stack)


def tree_entries(root: Path) -> Iterator[tuple[str, Path]]:
    """Every path under ``root`` (relative, ``/``-separated), parents first, names sorted."""
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        path = Path(entry.path)
        yield entry.name, path
        if entry.is_dir(follow_symlinks=False):
            yield from _walk_from([(entry.name + "/", path)])


def _tarinfo(
    archive: tarfile.TarFile, rel: str, path: Path, mtime: int, keep_owner: bool
) -> tarfile.TarInfo | None:
    info = archive.gettarinfo(str(path), arcname=rel)
    if info.type not in (tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE):
        return None  # device nodes, fifos and sockets never belong in an image layer
    info.mtime = mtime
    info.uname = info.gname = ""
    if keep_owner:
        info.mode = stat.S_IMODE(os.lstat(path).st_mode)
    else:
        info.uid = info.gid = 0
        if info.isdir():
            info.mode = 0o755
        elif info.issym():
            info.mode = 0o777
        else:
            info.mode = 0o755 if info.mode & 0o111 else 0o644
    return info


def write_layer(
    root: Path, cache: BlobCache, mtime: int, keep_owner: bool = False, compress: bool = True
) -> LayerBlob:
    """Tar (and gzip) the tree under ``root`` into the cache deterministically.

    ``keep_owner`` keeps uids, gids and special mode bits (for base root filesystems); package
    layers are always owned by root with normalised modes.
    """
    files = unpacked = 0
    with cache.writer() as (out, tmp):
        outer = _HashingWriter(out)
        gz = gzip.GzipFile(filename="", mode="wb", fileobj=outer, mtime=0, compresslevel=COMPRESS_LEVEL)
        sink: IO[bytes] = gz if compress else outer  # type: ignore[assignment]
        inner = _HashingWriter(sink)
        with tarfile.open(  # type: ignore[call-overload]
            fileobj=inner, mode="w|", format=tarfile.PAX_FORMAT
        ) as archive:
            for rel, path in tree_entries(root):
                info = _tarinfo(archive, rel, path, mtime, keep_owner)
                if info is None:
                    continue
                if info.isreg():
                    files += 1
                    unpacked += info.size
                    with open(path, "rb") as fh:
                        archive.addfile(info, fh)
                else:
                    archive.addfile(info)
        if compress:
            gz.close()
        out.flush()
        hex_digest = outer.hash.hexdigest()
        if not cache.has(hex_digest):
            cache.commit(tmp, hex_digest)
    return LayerBlob(
        digest=f"sha256:{hex_digest}",
        diff_id=f"sha256:{inner.hash.hexdigest()}",
        size=outer.size,
        files=files,
        unpacked=unpacked,
    )
