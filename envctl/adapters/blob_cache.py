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

from envctl.core.build_parts import Downloader
from envctl.core.names import valid_sha256
from envctl.core.shown import shown
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
            raise BuildError(f"{what}: unsupported URL scheme {shown(parts.scheme)} in {url}")
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
        """Where the blob with this hex digest lives (whether or not it is there).

        Only 64 lower-case hex digits name a blob: anything else (``../../x.whl``, a trailing
        newline) is a BuildError before it can become a path.
        """
        return self.blobs / valid_sha256(sha256, "blob cache", BuildError)

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
        if self.has(valid_sha256(sha256, what, BuildError)):
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
        """Place the blob at ``target``: a hard link when possible, else a copy; a target that
        already is this blob (a layout that shares the cache's inode) is left as it is."""
        source = self.path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and os.path.samefile(source, target):
            return
        try:
            os.link(source, target)
        except FileExistsError:
            target.unlink()
            os.link(source, target)
        except OSError:  # another file system, or hard links not allowed
            shutil.copyfile(source, target)
