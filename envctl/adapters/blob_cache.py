"""A content-addressed file cache: ``<root>/blobs/sha256/<hex>``, verified before anything uses it.

A file enters the cache only after its sha256 matched what the caller expected, under a temporary
name that is renamed into place, so the cache never holds a half-written or wrong blob.

A download that broke off (the network, Ctrl-C, a killed CI job) leaves what it got as
``.partial-<sha256>``; the next one goes on from there with ``Range``. Those bytes are hashed again
first and the whole file is verified at its end; when it does not match, or the server will not go
on from there, the file is downloaded once more from its first byte.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import http.client
import io
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from envctl.adapters import http_transfer
from envctl.adapters.files import write_atomic
from envctl.core.build_parts import Downloader
from envctl.core.names import valid_sha256
from envctl.core.shown import shown
from envctl.errors import BuildError, BuildFailure

CHUNK = 1 << 20
_MD5 = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
TIMEOUT_S = 60


def default_cache_root() -> Path:
    """``$ENVCTL_CACHE``, else ``$XDG_CACHE_HOME/envctl``, else ``~/.cache/envctl``."""
    if os.environ.get("ENVCTL_CACHE"):
        return Path(os.environ["ENVCTL_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "envctl"


class PartialRefused(BuildFailure):
    """The server would not go on from the bytes a download already holds (or they changed)."""


class UrlDownloader:
    """file://, http:// and https:// URLs, read with the standard library (a ``Downloader``)."""

    def open(self, url: str, what: str, offset: int = 0) -> AbstractContextManager[IO[bytes]]:
        """A readable stream of ``url`` from byte ``offset``; BuildError when it does not exist,
        BuildFailure else."""
        return _open_url(url, what, offset)


@contextlib.contextmanager
def _open_url(url: str, what: str, offset: int = 0) -> Iterator[IO[bytes]]:
    parts = urlsplit(url)
    try:
        if parts.scheme == "file":
            with open(unquote(parts.path), "rb") as fh:
                fh.seek(offset)
                yield fh
        elif parts.scheme in ("http", "https"):
            # retried and resumed where a connection broke (see http_transfer); fetch verifies
            with http_transfer.ResumingBody(functools.partial(_get, url), start=offset) as body:
                yield io.BufferedReader(body, CHUNK)
        else:
            raise BuildError(f"{what}: unsupported URL scheme {shown(parts.scheme)} in {url}")
    except http_transfer.BodyChanged as exc:
        raise PartialRefused(f"{what}: {url}: {exc}", hint="retry") from exc
    except (OSError, urllib.error.URLError, http.client.HTTPException) as exc:
        if isinstance(exc, FileNotFoundError) or (
            isinstance(exc, urllib.error.HTTPError) and exc.code == 404
        ):
            raise BuildError(f"{what}: {url} does not exist", hint="check the lock") from exc
        raise BuildFailure(f"{what}: cannot fetch {url}: {exc}", hint="retry") from exc


def _append(
    fh: IO[bytes],
    digest: Any,
    open_at: Callable[[int], AbstractContextManager[IO[bytes]]],
    offset: int,
) -> str:
    """Write the source's bytes from ``offset`` on to ``fh``; the hex digest of the whole file."""
    with open_at(offset) as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            fh.write(chunk)
    fh.flush()
    return str(digest.hexdigest())


def _get(url: str, headers: Mapping[str, str]) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": "envctl", **headers})
    return urllib.request.urlopen(request, timeout=TIMEOUT_S)


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
        valid_sha256(sha256, what, BuildError)  # a digest becomes a path only when it is hex

        def mismatch(actual: str) -> BuildError:
            return BuildError(
                f"{what}: sha256 mismatch for {url}: lock says {sha256}, download is {actual}",
                hint="the file changed since it was locked; re-lock or fix the index",
            )

        return self.download(sha256, lambda offset: self.downloader.open(url, what, offset), mismatch)

    def download(
        self,
        sha256: str,
        open_at: Callable[[int], AbstractContextManager[IO[bytes]]],
        mismatch: Callable[[str], BuildError],
    ) -> Path:
        """The blob ``sha256``, read through ``open_at(offset)`` (its bytes from ``offset`` on)
        and verified; a download an earlier run broke off goes on where it stopped.

        ``mismatch(actual)`` is the error for a file whose digest is not ``sha256``; nothing of
        such a file is kept.
        """
        if self.has(valid_sha256(sha256, "a blob", BuildError)):
            return self.path(sha256)
        with self._partial(sha256) as (fh, partial):
            if self.has(sha256):  # another download of it ended while this one waited
                return self.path(sha256)
            digest = hashlib.sha256()
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
            kept = fh.tell()
            try:
                actual = _append(fh, digest, open_at, kept)
            except PartialRefused:
                if not kept:
                    raise
                actual = ""
            if actual != sha256 and kept:
                # the kept bytes belong to another file (changed upstream, or damaged): afresh
                fh.seek(0)
                fh.truncate()
                actual = _append(fh, hashlib.sha256(), open_at, 0)
            if actual != sha256:
                raise mismatch(actual)
            return self.commit(partial, sha256)

    @contextlib.contextmanager
    def _partial(self, sha256: str) -> Iterator[tuple[IO[bytes], Path]]:
        """``.partial-<sha256>``, opened and locked (a second download of it waits for the first).

        Kept when the download breaks off with bytes in it; removed when it ends in a BuildError
        (a missing file, a mismatch) or holds nothing.
        """
        self.blobs.mkdir(parents=True, exist_ok=True)
        partial = self.blobs / f".partial-{sha256}"
        while True:
            fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            fh = os.fdopen(fd, "r+b")
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.path.samestat(os.fstat(fd), os.lstat(partial))
            except FileNotFoundError:
                same = False  # the download that held the lock finished or removed it
            if same:
                break
            fh.close()
        failed = False
        with fh:
            try:
                yield fh, partial
            except BuildError as exc:
                failed = not isinstance(exc, BuildFailure)
                raise
            finally:
                with contextlib.suppress(FileNotFoundError):
                    # only while the name is still this file (a committed one has moved away)
                    if os.path.samestat(os.fstat(fd), os.lstat(partial)) and (
                        failed or os.fstat(fd).st_size == 0
                    ):
                        os.unlink(partial)

    def fetch_md5(self, url: str, md5: str, what: str) -> tuple[Path, str]:
        """The cached blob for a file a lock pins by ``md5`` alone, and its sha256.

        Older conda-lock versions wrote only conda's md5. The download is checked against it;
        the blob is then stored under its sha256 like any other, with ``md5/<md5>`` naming
        that sha256, so a warm build finds it without downloading again.
        """
        if not _MD5.fullmatch(md5):  # it becomes a path: checked here whatever the caller did
            raise BuildError(f"{what}: md5 {shown(md5)} is not 32 lower-case hex digits")
        index = self.root / "md5" / md5
        with contextlib.suppress(OSError, UnicodeDecodeError):
            known = index.read_text(encoding="ascii").strip()
            if _SHA256.fullmatch(known) and self.has(known):
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
