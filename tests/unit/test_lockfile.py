"""conda-lock.yml round trip through conda-lock's models, the fast header read, version dispatch."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from envctl.adapters.lockfile import read_header, read_lock, write_lock
from envctl.core.lock import LockData, LockEntry, LockInputs
from envctl.errors import LockError

INPUTS = LockInputs("p", "m", "s", "2025-01-01T00:00:00Z", ("linux-64",))
ENTRIES = (
    LockEntry(
        "conda", "zlib", "1.3.1", "linux-64", "file:///c/linux-64/zlib-1.3.1-h0_0.conda",
        sha256="a" * 64, md5="b" * 32, dependencies=(("__glibc", ">=2.17"),), build="h0_0",
    ),
    LockEntry(
        "pip", "torch", "2.5.1", "linux-64", "https://f/torch-2.5.1-py3-none-any.whl",
        sha256="c" * 64, dependencies=(("filelock", "*"),),
    ),
    LockEntry("pip", "filelock", "3.16.1", "linux-64", "https://f/filelock-3.16.1-py3-none-any.whl", sha256="d" * 64),
)  # fmt: skip
DATA = LockData(INPUTS, INPUTS.content_hash(), ENTRIES, "0.1.0", {"cuda": "12.4"}, ("file:///c",))


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "conda-lock.yml"
    write_lock(path, DATA)
    raw = yaml.safe_load(path.read_text())
    assert raw["version"] == 1
    assert raw["metadata"]["content_hash"] == {"linux-64": DATA.content_hash}
    back = read_lock(path)
    assert back.content_hash == DATA.content_hash and back.inputs == INPUTS
    assert back.solution == {"cuda": "12.4"} and back.channels == ("file:///c",)
    assert {(e.manager, e.name): e for e in back.entries} == {(e.manager, e.name): e for e in ENTRIES}
    header = read_header(path)
    assert header.content_hash == DATA.content_hash and header.inputs == INPUTS
    assert len(header.entries) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 2\nmetadata: {}\npackage: []\n", "lockfile version 2 is not supported"),
        ("metadata: {}\npackage: []\n", "lockfile has no 'version'"),
        ("version: 1\n: : :\n", "corrupt lockfile: not YAML"),
        ("- a\n- b\n", "corrupt lockfile: not a mapping"),
        ("version: 1\nmetadata: {}\npackage: [{name: x}]\n", "package[0] lacks version"),
        ("version: 1\nmetadata: {}\npackage: []\n", "not an envctl lock"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "conda-lock.yml"
    path.write_text(text)
    for reader in (read_header, read_lock):
        with pytest.raises(LockError) as info:
            reader(path)
        assert message in info.value.message and "\n" not in info.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LockError, match="no such lockfile"):
        read_lock(tmp_path / "nope.yml")


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "conda-lock.yml"
    write_lock(path, DATA)
    before = path.read_bytes()
    bad = LockEntry("conda", "x", "1", "linux-64", "file:///x.conda", sha256="e" * 64)  # no md5
    with pytest.raises(LockError, match="cannot build the lockfile"):
        write_lock(path, LockData(INPUTS, "h", (bad,), "0.1.0"))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["conda-lock.yml"]
