"""The content-addressed download cache verifies before anything uses a file."""

from __future__ import annotations

import hashlib
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
