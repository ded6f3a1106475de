"""A content-addressed file cache: ``<root>/blobs/sha256/<hex>``, verified before anything uses it.

A file enters the cache only after its sha256 matched what the caller expected, under a temporary
name that is renamed into place, so the cache never holds a half-written or wrong blob.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit

from envctl.adapters.files import write_atomic
from envctl.core.build_parts import Downloader
from envctl.errors import BuildError, BuildFailure

CHUNK = 1 << 20
TIMEOUT_S = 60


def default_cache_root() -> Path:
    """``$ENVCTL_CACHE``, else ``$XDG_CACHE_HOME/envctl``, else ``~/.cache/envctl``."""
    if os.environ.get("ENVCTL_CACHE"):
        return Path(os.environ["ENVCTL_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "envctl"


class UrlDownloader:
    """file://, http:// and https:// URLs, read with the standard library (a ``Downloader``)."""

    def open(self, url: str, what: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        """A readable stream of ``url``; BuildError when it does not exist, BuildFailure else."""
        return _open_url(url, what)


@contextlib.contextmanager
def _open_url(url: str, what: str) -> Iterator[IO[bytes]]:
    parts = urlsplit(url)
    try:
        if parts.scheme == "file":
            with open(unquote(parts.path), "rb") as fh:
                yield fh
        elif parts.scheme in ("http", "https"):
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
                yield response
        else:
            raise BuildError(f"{what}: unsupported URL scheme {parts.scheme!r} in {url}")
    except (OSError, urllib.error.URLError) as exc:
        if isinstance(exc, FileNotFoundError) or (
            isinstance(exc, urllib.error.HTTPError) and exc.code == 404
        ):
            raise BuildError(f"{what}: {url} does not exist", hint="check the lock") from exc
        raise BuildFailure(f"{what}: cannot fetch {url}: {exc}", hint="retry") from exc


class BlobCache:
    """Blobs by sha256 under one root directory; missing files come through ``downloader``."""

    def __init__(self, root: Path, downloader: Downloader | None = None) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self.downloader: Downloader = downloader or UrlDownloader()

    def path(self, sha256: str) -> Path:
        """Where the blob with this hex digest lives (whether or not it is there)."""
        return self.blobs / sha256

    def has(self, sha256: str) -> bool:
        """Whether the blob is cached."""
        return self.path(sha256).is_file()

    @contextlib.contextmanager
    def writer(self) -> Iterator[tuple[IO[bytes], Path]]:
        """A temporary file inside the cache (same filesystem, so the final rename is atomic)."""
        self.blobs.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".incoming-", dir=self.blobs)
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh, Path(tmp)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def commit(self, tmp: Path, sha256: str) -> Path:
        """Move a verified temporary file into place under its digest."""
        final = self.path(sha256)
        os.chmod(tmp, 0o444)
        os.replace(tmp, final)
        return final

    def fetch(self, url: str, sha256: str, what: str) -> Path:
        """The cached blob for ``url``, downloading and verifying it first when missing.

        ``what`` names the package in errors. A digest mismatch raises BuildError with both
        hashes and leaves nothing in the cache.
        """
        if self.has(sha256):
            return self.path(sha256)
        with self.writer() as (out, tmp), self.downloader.open(url, what) as source:
            digest = hashlib.sha256()
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            actual = digest.hexdigest()
            if actual != sha256:
                raise BuildError(
                    f"{what}: sha256 mismatch for {url}: lock says {sha256}, download is {actual}",
                    hint="the file changed since it was locked; re-lock or fix the index",
                )
            return self.commit(tmp, sha256)

    def fetch_md5(self, url: str, md5: str, what: str) -> tuple[Path, str]:
        """The cached blob for a file a lock pins by ``md5`` alone, and its sha256.

        Older conda-lock versions wrote only conda's md5. The download is checked against it;
        the blob is then stored under its sha256 like any other, with ``md5/<md5>`` naming
        that sha256, so a warm build finds it without downloading again.
        """
        index = self.root / "md5" / md5
        with contextlib.suppress(OSError, UnicodeDecodeError):
            known = index.read_text(encoding="ascii").strip()
            if len(known) == 64 and self.has(known):
                return self.path(known), known
        with self.writer() as (out, tmp), self.downloader.open(url, what) as source:
            by_md5 = hashlib.md5(usedforsecurity=False)
            by_sha256 = hashlib.sha256()
            while chunk := source.read(CHUNK):
                by_md5.update(chunk)
                by_sha256.update(chunk)
                out.write(chunk)
            out.flush()
            if by_md5.hexdigest() != md5:
                raise BuildError(
                    f"{what}: md5 mismatch for {url}: lock says {md5}, download is {by_md5.hexdigest()}",
                    hint="the file changed since it was locked; re-lock or fix the channel",
                )
            sha256 = by_sha256.hexdigest()
            path = self.path(sha256) if self.has(sha256) else self.commit(tmp, sha256)
        write_atomic(index, sha256 + "\n")
        return path, sha256

    def put_file(self, source: Path, sha256: str | None = None) -> str:
        """Copy a local file into the cache; returns its hex digest (verified when given)."""
        try:
            with open(source, "rb") as fh:
                return self.put_stream(fh, sha256, str(source))
        except FileNotFoundError:
            raise BuildError(f"{source}: missing blob", hint="the image is incomplete") from None

    def put_stream(self, fh: IO[bytes], sha256: str | None = None, what: str = "blob") -> str:
        """Copy a stream into the cache; returns its hex digest (verified when given)."""
        with self.writer() as (out, tmp):
            digest = hashlib.sha256()
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            actual = digest.hexdigest()
            if sha256 is not None and actual != sha256:
                raise BuildError(f"{what}: sha256 is {actual}, expected {sha256}")
            if not self.has(actual):
                self.commit(tmp, actual)
            return actual

    def link_into(self, sha256: str, target: Path) -> None:
        """Place the blob at ``target``: a hard link when possible, else a copy."""
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(self.path(sha256), target)
        except OSError:
            shutil.copyfile(self.path(sha256), target)
