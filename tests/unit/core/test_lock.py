"""Unit tests of the lock values and the content hash."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from envctl.core.lock import LockData, LockEntry, LockInputs, epoch_of, locked_env
from envctl.errors import LockError

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


def _entry(name: str, manager: str = "pip", sha: str | None = "A" * 64, **kw: str) -> LockEntry:
    url = kw.pop("url", f"https://f/{name}-1.0-py3-none-any.whl")
    return LockEntry(manager, name, "1.0", kw.pop("platform", "linux-64"), url, sha256=sha)  # type: ignore[arg-type]


def _lock(*entries: LockEntry, solution: dict[str, object] | None = None) -> LockData:
    return LockData(
        platforms=("linux-64", "linux-aarch64"),
        entries=entries,
        content_hash="h",
        inputs=BASE,
        solution=solution if solution is not None else {"python": "3.12.4", "profile": "train"},
    )


def test_locked_env_is_one_platform_sorted_normalised_and_timed() -> None:
    lock = _lock(
        _entry("Six_Lib"),
        _entry("zlib", "conda"),
        _entry("numpy"),
        _entry("torch", platform="linux-aarch64"),
        solution={"python": "3.12.4", "profile": "train", "cuda": "12.4", "frameworks": {"torch": "2.5"}},
    )
    env = locked_env(lock, "linux-64", source="l.yml")
    assert [(f.name, f.manager) for f in env.files] == [
        ("numpy", "pip"),
        ("six-lib", "pip"),
        ("zlib", "conda"),
    ]
    assert {f.sha256 for f in env.files} == {"a" * 64}
    assert env.python == "3.12" and env.content_hash == "h" and env.cuda == "12.4"
    assert env.epoch == 1735689600  # BASE's exclude-newer: 2025-01-01T00:00:00Z
    assert env.env_prefix() == "/opt/envctl/envs/train" and env.env_prefix("x") == "/opt/envctl/envs/x"
    assert env.frameworks == ("torch==2.5",) and env.min_driver is None


def test_locked_env_errors_name_the_file() -> None:
    with pytest.raises(LockError, match=r"l\.yml: no packages for platform osx-64") as info:
        locked_env(_lock(_entry("six")), "osx-64", source="l.yml")
    assert info.value.hint == "the lock covers: linux-64, linux-aarch64"
    with pytest.raises(LockError, match=r"l\.yml: package six 1\.0 has no sha256"):
        locked_env(_lock(_entry("six", sha=None)), "linux-64", source="l.yml")
    with pytest.raises(LockError, match="cannot tell which Python"):
        locked_env(_lock(_entry("six"), solution={}), "linux-64", source="l.yml")


@pytest.mark.parametrize(
    ("entries", "python"),
    [
        ((_entry("python", "conda"), _entry("six")), "1.0"),  # a conda python's X.Y
        ((_entry("torch", url="https://f/torch-2.5.1-cp311-cp311-linux_x86_64.whl"),), "3.11"),
        (
            (
                _entry("a", url="https://f/a-1-cp311-cp311-linux_x86_64.whl"),
                _entry("b", url="https://f/b-1-cp312-cp312-linux_x86_64.whl"),
            ),
            "",
        ),  # two cpXY tags: cannot tell
    ],
)
def test_python_without_a_solution(entries: tuple[LockEntry, ...], python: str) -> None:
    lock = _lock(*entries, solution={})
    if python:
        assert locked_env(lock, "linux-64", source="l").python == python
    else:
        with pytest.raises(LockError):
            locked_env(lock, "linux-64", source="l")


def test_epoch_of() -> None:
    assert epoch_of("1970-01-01T00:01:00Z") == 60
    assert epoch_of("1970-01-01T00:01:00") == 60  # no zone: UTC
    assert epoch_of("1970-01-01T01:01:00+01:00") == 60
    assert epoch_of("") is None and epoch_of("soon") is None
    assert epoch_of("1960-01-01T00:00:00Z") == 0


def test_a_foreign_lock_is_not_envctls() -> None:
    lock = LockData(platforms=("linux-64",), entries=(), content_hash="h")
    assert not lock.written_by_envctl and lock.exclude_newer == "" and lock.framework_names == ()
    assert _lock().written_by_envctl and _lock().exclude_newer == BASE.exclude_newer
