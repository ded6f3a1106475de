"""Unit tests of the lock values and the content hash."""

from __future__ import annotations

import dataclasses
import hashlib

from envctl.core.lock import LockEntry, LockInputs

BASE = LockInputs(
    profile_hash="p",
    matrix_hash="m",
    solution_hash="s",
    exclude_newer="2025-01-01T00:00:00Z",
    platforms=("linux-64", "linux-aarch64"),
)


def test_content_hash_is_stable_and_canonical() -> None:
    assert BASE.content_hash() == BASE.content_hash()
    # platform order is not content
    swapped = dataclasses.replace(BASE, platforms=("linux-aarch64", "linux-64"))
    assert swapped.content_hash() == BASE.content_hash()
    # the documented canonical form: changing fields or encoding is a format change (LOCK_FORMAT)
    canonical = (
        '{"channels":[],"exclude_newer":"2025-01-01T00:00:00Z","exclude_newer_packages":[],'
        '"find_links":[],"format":1,"index_url":"","matrix_hash":"m",'
        '"platforms":["linux-64","linux-aarch64"],"profile_hash":"p","solution_hash":"s"}'
    )
    assert BASE.content_hash() == hashlib.sha256(canonical.encode()).hexdigest()


def test_every_input_changes_the_hash() -> None:
    changes = {
        "profile_hash": "p2",
        "matrix_hash": "m2",
        "solution_hash": "s2",
        "exclude_newer": "2025-01-02T00:00:00Z",
        "platforms": ("linux-64",),
        "exclude_newer_packages": (("torch", "2026-01-01T00:00:00Z"),),
        "find_links": ("/wheels",),
        "channels": ("file:///channel",),
        "index_url": "https://mirror/simple",
        "format": 2,
    }
    hashes = {dataclasses.replace(BASE, **{k: v}).content_hash() for k, v in changes.items()}  # type: ignore[arg-type]
    assert len(hashes) == len(changes) and BASE.content_hash() not in hashes


def test_entry_filename() -> None:
    entry = LockEntry(
        "pip", "torch", "2.5.1", "linux-64", "https://h/p/torch-2.5.1-py3-none-any.whl#sha256=x"
    )
    assert entry.filename == "torch-2.5.1-py3-none-any.whl"
    quoted = "https://download.pytorch.org/whl/cu121/torch-2.5.1%2Bcu121-cp312-cp312-linux_x86_64.whl"
    entry = LockEntry("pip", "torch", "2.5.1+cu121", "linux-64", quoted)
    assert entry.filename == "torch-2.5.1+cu121-cp312-cp312-linux_x86_64.whl"
