"""The content-addressed download cache verifies before anything uses a file."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from envctl.adapters.blob_cache import BlobCache
from envctl.errors import BuildError


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
