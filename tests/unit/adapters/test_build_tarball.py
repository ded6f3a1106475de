"""Deterministic layer tarballs."""

from __future__ import annotations

import gzip
import os
import tarfile
from pathlib import Path

from envctl.adapters.blob_cache import BlobCache
from envctl.adapters.tarball import tree_entries, write_layer


def _tree(root: Path, order: list[str]) -> Path:
    for name in order:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)
    os.chmod(root / "b/x.py", 0o700)
    (root / "link").symlink_to("c")
    return root


def test_same_tree_gives_same_digest_whatever_the_creation_order(tmp_path: Path) -> None:
    one = _tree(tmp_path / "one", ["b/x.py", "a/y.py", "c"])
    two = _tree(tmp_path / "two", ["c", "a/y.py", "b/x.py"])
    os.utime(two / "c", (1, 1))  # build-machine mtimes never leak in
    cache = BlobCache(tmp_path / "cache")
    first, second = write_layer(one, cache, 1000), write_layer(two, cache, 1000)
    assert first == second
    assert write_layer(one, cache, 2000).digest != first.digest


def test_entries_are_sorted_owned_by_root_with_fixed_mtime(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t", ["b/x.py", "a/y.py", "c"])
    cache = BlobCache(tmp_path / "cache")
    blob = write_layer(root, cache, 1234)
    raw = cache.path(blob.digest.split(":")[1]).read_bytes()
    assert raw[4:8] == b"\0\0\0\0" and not raw[3] & 0x08  # gzip: mtime 0, no file name
    with gzip.open(cache.path(blob.digest.split(":")[1])) as fh, tarfile.open(fileobj=fh) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["a", "a/y.py", "b", "b/x.py", "c", "link"]
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", 1234)}
    modes = {m.name: m.mode for m in members}
    assert modes["b/x.py"] == 0o755 and modes["c"] == 0o644 and modes["a"] == 0o755
    assert blob.files == 3


def test_tree_entries_lists_parents_first(tmp_path: Path) -> None:
    _tree(tmp_path, ["z/a", "b/x.py", "a/z/q", "c"])
    names = [name for name, _ in tree_entries(tmp_path)]
    assert names == ["a", "a/z", "a/z/q", "b", "b/x.py", "c", "link", "z", "z/a"]
