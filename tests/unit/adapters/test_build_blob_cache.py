"""The content-addressed download cache verifies before anything uses a file."""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from envctl.adapters.blob_cache import BlobCache, PartialRefused
from envctl.errors import BuildError, BuildFailure


def test_fetch_file_url_verifies_and_caches(tmp_path: Path) -> None:
    source = tmp_path / "w.whl"
    source.write_bytes(b"wheel bytes")
    digest = hashlib.sha256(b"wheel bytes").hexdigest()
    cache = BlobCache(tmp_path / "cache")
    path = cache.fetch(source.as_uri(), digest, "w 1.0")
    assert path.read_bytes() == b"wheel bytes" and path.name == digest
    source.unlink()  # a second fetch is served from the cache
    assert cache.fetch(source.as_uri(), digest, "w 1.0") == path


def test_mismatch_names_package_and_both_hashes_and_leaves_nothing(tmp_path: Path) -> None:
    source = tmp_path / "w.whl"
    source.write_bytes(b"tampered")
    cache = BlobCache(tmp_path / "cache")
    with pytest.raises(BuildError) as info:
        cache.fetch(source.as_uri(), "f" * 64, "w 1.0")
    message = str(info.value)
    assert "w 1.0" in message and "f" * 64 in message
    assert hashlib.sha256(b"tampered").hexdigest() in message
    assert list(cache.blobs.iterdir()) == []


def test_unreachable_and_unsupported_urls(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    with pytest.raises(BuildError, match="does not exist"):
        cache.fetch((tmp_path / "missing.whl").as_uri(), "0" * 64, "x 1")
    with pytest.raises(BuildError, match="unsupported URL scheme"):
        cache.fetch("ftp://example.invalid/x.whl", "0" * 64, "x 1")


DATA = bytes(range(256)) * 64  # 16 KiB
DIGEST = hashlib.sha256(DATA).hexdigest()


class Source:
    """A Downloader serving DATA (or ``data``) from any offset; the n-th open may break off after
    ``cut`` bytes or refuse the offset. Records the offsets asked for."""

    def __init__(self, data: bytes = DATA, cut: dict[int, int] | None = None, refuse: bool = False) -> None:
        self.data = data
        self.cut = cut or {}
        self.refuse = refuse
        self.offsets: list[int] = []

    @contextlib.contextmanager
    def _stream(self, what: str, offset: int) -> Iterator[IO[bytes]]:
        self.offsets.append(offset)
        if self.refuse and offset:
            raise PartialRefused(f"{what}: no bytes from {offset} on")
        body = self.data[offset:]
        cut = self.cut.get(len(self.offsets))
        if cut is None:
            yield io.BytesIO(body)
            return
        stream = io.BytesIO(body[:cut])
        yield stream
        raise BuildFailure(f"{what}: cannot fetch: connection reset")

    def open(self, url: str, what: str, offset: int = 0) -> contextlib.AbstractContextManager[IO[bytes]]:
        return self._stream(what, offset)


def _files(cache: BlobCache) -> list[str]:
    return sorted(p.name for p in cache.blobs.iterdir())


def test_a_download_that_broke_off_goes_on_from_its_bytes_in_the_next_run(tmp_path: Path) -> None:
    source = Source(cut={1: 5000})
    cache = BlobCache(tmp_path / "c", source)
    with pytest.raises(BuildFailure, match="connection reset"):
        cache.fetch("https://x/w.whl", DIGEST, "w 1")
    assert _files(cache) == [f".partial-{DIGEST}"]
    assert (cache.blobs / f".partial-{DIGEST}").read_bytes() == DATA[:5000]
    assert cache.fetch("https://x/w.whl", DIGEST, "w 1").read_bytes() == DATA
    assert source.offsets == [0, 5000]
    assert _files(cache) == [DIGEST]


def test_kept_bytes_of_another_file_are_downloaded_again(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "c", source := Source())
    cache.blobs.mkdir(parents=True)
    (cache.blobs / f".partial-{DIGEST}").write_bytes(b"\xff" * 700)  # damaged
    assert cache.fetch("https://x/w.whl", DIGEST, "w 1").read_bytes() == DATA
    assert source.offsets == [700, 0] and _files(cache) == [DIGEST]


def test_a_server_that_will_not_go_on_gets_asked_from_the_start(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "c", source := Source(refuse=True))
    cache.blobs.mkdir(parents=True)
    (cache.blobs / f".partial-{DIGEST}").write_bytes(DATA[:900])
    assert cache.fetch("https://x/w.whl", DIGEST, "w 1").read_bytes() == DATA
    assert source.offsets == [900, 0]


def test_a_mismatch_or_a_missing_file_keeps_nothing(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "c", Source(data=b"other bytes"))
    with pytest.raises(BuildError, match="sha256 mismatch"):
        cache.fetch("https://x/w.whl", DIGEST, "w 1")
    assert _files(cache) == []
    (cache.blobs / f".partial-{DIGEST}").write_bytes(DATA[:10])
    with pytest.raises(BuildError, match="does not exist"):
        BlobCache(tmp_path / "c").fetch((tmp_path / "gone.whl").as_uri(), DIGEST, "w 1")
    assert _files(cache) == []


def test_a_download_that_got_nothing_leaves_nothing(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "c", Source(cut={1: 0}))
    with pytest.raises(BuildFailure):
        cache.fetch("https://x/w.whl", DIGEST, "w 1")
    assert _files(cache) == []


def test_a_file_url_goes_on_from_its_offset(tmp_path: Path) -> None:
    (tmp_path / "w.whl").write_bytes(DATA)
    cache = BlobCache(tmp_path / "c")
    cache.blobs.mkdir(parents=True)
    (cache.blobs / f".partial-{DIGEST}").write_bytes(DATA[:1234])
    assert cache.fetch((tmp_path / "w.whl").as_uri(), DIGEST, "w 1").read_bytes() == DATA


@pytest.mark.parametrize("sha256", ["../../../tmp/x/evil.whl", "a" * 64 + "\n", "A" * 64, "", "/etc/passwd"])
def test_a_digest_that_is_not_hex_never_becomes_a_path(tmp_path: Path, sha256: str) -> None:
    # finding 4: a lock's sha256 "../../../tmp/x/evil.whl" found a "cached" file outside the cache
    evil = tmp_path / "tmp" / "x" / "evil.whl"
    evil.parent.mkdir(parents=True)
    evil.write_bytes(b"evil")
    cache = BlobCache(tmp_path / "cache" / "a" / "b")
    for call in (lambda: cache.fetch(evil.as_uri(), sha256, "evil 1"), lambda: cache.path(sha256)):
        with pytest.raises(BuildError, match="not 64 lower-case hex digits"):
            call()
    assert not (tmp_path / "cache").exists() or not any(cache.root.rglob("*.whl"))


def test_linking_a_blob_onto_itself_is_a_no_op(tmp_path: Path) -> None:
    # a layout that is the build's own base shares the cache's inodes (SameFileError before)
    cache = BlobCache(tmp_path / "cache")
    digest = cache.put_stream(io.BytesIO(b"layer"))
    target = tmp_path / "out" / "blobs" / "sha256" / digest
    cache.link_into(digest, target)
    cache.link_into(digest, target)
    assert target.read_bytes() == b"layer" and target.samefile(cache.path(digest))
    target.unlink()
    target.write_bytes(b"stale")  # another file in the way is replaced by the blob
    cache.link_into(digest, target)
    assert target.read_bytes() == b"layer"
