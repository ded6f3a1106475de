"""Renderers of `envctl export` on hand-made entries, and a lock conda-lock itself wrote (no network)."""

from __future__ import annotations

import sys
from pathlib import Path

from packaging.pylock import Pylock

from envctl.adapters.files import tomllib
from envctl.core.lock import LockData, LockEntry, LockInputs
from envctl.services.lock.export import render_explicit, render_pylock, render_requirements

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "lock"))

TORCH = LockEntry(
    "pip", "torch", "2.5.1+cu121", "linux-64",
    "https://download.pytorch.org/whl/cu121/torch-2.5.1%2Bcu121-cp312-cp312-linux_x86_64.whl",
    sha256="a" * 64, dependencies=(("filelock", "*"),),
)  # fmt: skip
FILELOCK = LockEntry(
    "pip", "filelock", "3.16.1", "linux-64", "https://f/filelock-3.16.1.tar.gz", sha256="b" * 64
)
ZLIB = LockEntry(
    "conda", "zlib", "1.3.1", "linux-64", "https://conda/linux-64/zlib-1.3.1-h0.conda",
    sha256="c" * 64, md5="d" * 32, build="h0",
)  # fmt: skip
LOCK = LockData(
    platforms=("linux-64",),
    entries=(ZLIB, TORCH, FILELOCK),
    content_hash="e" * 64,
    inputs=LockInputs("p", "m", "s", "2025-01-01T00:00:00Z", ("linux-64",)),
    envctl_version="0.1.0",
    solution={"python": "3.12"},
)


def test_requirements_pin_exact_files() -> None:
    text, count = render_requirements(LOCK.entries, "linux-64")
    assert count == 2
    assert f"torch @ {TORCH.url} \\\n    --hash=sha256:{'a' * 64}" in text
    assert "1 conda packages are not part of this file" in text


def test_explicit_lists_conda_and_mentions_pip() -> None:
    text, count = render_explicit(LOCK.entries, "linux-64")
    lines = text.splitlines()
    assert count == 1 and "@EXPLICIT" in lines
    assert f"{ZLIB.url}#{'d' * 32}" in lines
    assert f"# pip torch @ {TORCH.url}#sha256={'a' * 64}" in lines


def test_pylock_reads_back_with_packaging() -> None:
    text, count = render_pylock(LOCK.entries, "linux-64", LOCK)
    pylock = Pylock.from_dict(tomllib.loads(text))
    assert count == 2 and str(pylock.requires_python) == "==3.12.*"
    by_name = {p.name: p for p in pylock.packages}
    torch = by_name["torch"]
    assert str(torch.version) == "2.5.1+cu121"
    assert torch.wheels and torch.wheels[0].name == "torch-2.5.1+cu121-cp312-cp312-linux_x86_64.whl"
    assert torch.dependencies == [{"name": "filelock"}]
    assert by_name["filelock"].sdist is not None  # not every file is a wheel
    assert [str(m) for m in pylock.environments or ()] == [
        'sys_platform == "linux" and platform_machine == "x86_64"'
    ]


def test_pylock_with_non_ascii_urls_reads_back() -> None:
    # the export's TOML goes through the one writer, which tomllib reads back for any text
    url = "https://files.example/ünï/🎉/filelock-3.16.1.tar.gz"
    entry = LockEntry("pip", "filelock", "3.16.1", "linux-64", url, sha256="b" * 64)
    text, _ = render_pylock((entry,), "linux-64", LOCK)
    (package,) = tomllib.loads(text)["packages"]
    assert package["sdist"]["url"] == url


def test_a_lock_written_by_conda_lock_itself_exports(tmp_path: Path) -> None:
    from lk_condalock import conda_lock_writes

    from envctl.services.lock.export import export_lock

    lock = conda_lock_writes(tmp_path / "conda-lock.yml")
    requirements = export_lock(lock, "requirements", platform="linux-64")
    assert requirements.packages == 1 and "PyYAML @ https://f/PyYAML-6.0.2-" in requirements.text
    explicit = export_lock(lock, "explicit", platform="osx-arm64")
    assert "https://conda/osx-arm64/zlib-1.3.1-h1_0.conda#" + "d" * 32 in explicit.text
    assert export_lock(lock, "pylock", platform="linux-64").packages == 1


def test_a_url_or_hash_that_would_inject_lines_is_refused_by_every_format() -> None:
    # finding 11: the reader refuses these first; the renderers never trust their callers either
    import dataclasses

    import pytest

    from envctl.errors import LockError

    evil_url = dataclasses.replace(TORCH, url="https://x/t.whl\n--extra-index-url http://evil/")
    evil_hash = dataclasses.replace(TORCH, sha256="a" * 64 + "\nevil @ http://evil/evil.whl")
    for entries in ((evil_url,), (evil_hash,)):
        with pytest.raises(LockError):
            render_requirements(entries, "linux-64")
    with pytest.raises(LockError):
        render_explicit((evil_url,), "linux-64")
