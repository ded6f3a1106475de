"""The one lock reader and writer: round trip, the fast read, version dispatch, foreign locks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "lock"))

from lk_condalock import conda_lock_writes

from envctl.adapters.lockfile import read_lock, write_lock
from envctl.core.lock import LockData, LockEntry, LockInputs, locked_env
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
DATA = LockData(
    platforms=("linux-64",),
    entries=ENTRIES,
    content_hash=INPUTS.content_hash(),
    channels=("file:///c",),
    inputs=INPUTS,
    envctl_version="0.1.0",
    solution={"cuda": "12.4", "frameworks": {"torch": "2.5.1"}},
    fingerprint="f" * 64,
)


def _by_key(entries: tuple[LockEntry, ...]) -> dict[tuple[str, str], LockEntry]:
    return {(e.manager, e.name): e for e in entries}


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "conda-lock.yml"
    write_lock(path, DATA)
    raw = yaml.safe_load(path.read_text())
    assert raw["version"] == 1
    assert raw["metadata"]["content_hash"] == {"linux-64": DATA.content_hash}
    back = read_lock(path)
    assert _by_key(back.entries) == _by_key(ENTRIES)
    assert back == LockData(**{**DATA.__dict__, "entries": back.entries})
    assert back.written_by_envctl and back.exclude_newer == "2025-01-01T00:00:00Z"
    assert back.framework_names == ("torch",)


def test_the_fast_read_gives_the_same_lock(tmp_path: Path) -> None:
    path = tmp_path / "conda-lock.yml"
    write_lock(path, DATA)
    assert read_lock(path, validate=False) == read_lock(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 2\nmetadata: {}\npackage: []\n", "lockfile version 2 is not supported"),
        ("version: true\nmetadata: {}\npackage: []\n", "lockfile version True is not supported"),
        ("metadata: {}\npackage: []\n", "lockfile has no 'version'"),
        ("version: 1\n: : :\n", "corrupt lockfile: malformed YAML"),
        ("- a\n- b\n", "corrupt lockfile: not a mapping"),
        ("version: 1\npackage: []\n", "'metadata' or 'package' missing"),
        ("version: 1\nmetadata: {}\npackage: [{name: x}]\n", "package[0] lacks version"),
        (
            "version: 1\nmetadata: {platforms: [linux-64]}\npackage: [{name: x, version: '1', "
            "manager: npm, platform: linux-64, url: u, hash: {}}]\n",
            "package[0] (x) needs manager pip or conda",
        ),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "conda-lock.yml"
    path.write_text(text)
    for validate in (False, True):
        with pytest.raises(LockError) as info:
            read_lock(path, validate=validate)
        assert message in info.value.message and "\n" not in info.value.message


def _lock_text(tmp_path: Path, custom: dict[str, str] | None) -> Path:
    path = tmp_path / "conda-lock.yml"
    write_lock(path, DATA)
    raw = yaml.safe_load(path.read_text())
    raw["metadata"]["custom_metadata"] = custom
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("custom", "message"),
    [
        ({"envctl_solution": "{}"}, "envctl metadata lacks envctl_content_hash or envctl_format"),
        ({"envctl_content_hash": "h", "envctl_format": "9"}, "envctl lock format 9 is not supported"),
        ({"envctl_content_hash": "h", "envctl_format": "1", "envctl_inputs": "{}"}, "envctl_inputs is incomplete"),
        ({"envctl_content_hash": "h", "envctl_format": "1", "envctl_inputs": "[1"}, "envctl metadata is not JSON"),
        # finding 10: nesting deeper than the JSON parser's recursion is not a traceback
        ({"envctl_content_hash": "h", "envctl_format": "1", "envctl_inputs": "[" * 100_000}, "envctl metadata is not JSON"),
    ],
)  # fmt: skip
def test_broken_envctl_metadata_is_a_corrupt_lock(
    tmp_path: Path, custom: dict[str, str], message: str
) -> None:
    path = _lock_text(tmp_path, custom)
    with pytest.raises(LockError, match=message):
        read_lock(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LockError, match="no such lockfile"):
        read_lock(tmp_path / "nope.yml")


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "conda-lock.yml"
    write_lock(path, DATA)
    before = path.read_bytes()
    bad = LockEntry("conda", "x", "1", "linux-64", "file:///x.conda", sha256="e" * 64)  # no md5
    with pytest.raises(LockError, match="cannot build the lockfile"):
        write_lock(path, LockData(("linux-64",), (bad,), "h", inputs=INPUTS))
    with pytest.raises(LockError, match="has no envctl inputs"):
        write_lock(path, LockData(("linux-64",), ENTRIES, "h"))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["conda-lock.yml"]


def test_a_lock_written_by_conda_lock_itself_reads_without_envctl_metadata(tmp_path: Path) -> None:
    path = conda_lock_writes(tmp_path / "conda-lock.yml")
    assert "envctl" not in path.read_text()
    lock = read_lock(path)
    assert lock == read_lock(path, validate=False)
    assert not lock.written_by_envctl and lock.inputs is None
    assert lock.platforms == ("linux-64", "osx-arm64") and lock.channels == ("conda-forge",)
    assert lock.solution == {} and lock.exclude_newer == "" and lock.framework_names == ()
    assert lock.envctl_version == "" and lock.fingerprint == ""
    assert len(lock.content_hash) == 64  # one hash over conda-lock's two per-platform hashes
    entries = _by_key(lock.for_platform("linux-64"))
    # version 1 repeats a package once per category: read back as one entry
    assert entries["pip", "PyYAML"].categories == ("dev", "test")
    assert entries["conda", "zlib"].dependencies == (("libgcc", ">=13"),)
    assert entries["conda", "zlib"].md5 == "b" * 32 and entries["conda", "zlib"].build == "h0_0"
    assert len(lock.entries) == 3


def test_a_foreign_lock_has_sensible_build_defaults(tmp_path: Path) -> None:
    lock = read_lock(conda_lock_writes(tmp_path / "conda-lock.yml"))
    env = locked_env(lock, "linux-64", source="conda-lock.yml", fallback_epoch=1234)
    assert env.python == "3.11"  # from the one cpXY tag of its wheels
    assert env.epoch == 1234 and env.content_hash == lock.content_hash
    assert env.env_name() == "default" and env.cuda is None and env.frameworks == ()
    assert [f.name for f in env.files] == ["pyyaml", "zlib"]  # pip names normalised
    assert env.files[0].sha256 == "a" * 64  # lower case


def test_a_single_platform_foreign_lock_keeps_conda_locks_hash(tmp_path: Path) -> None:
    path = conda_lock_writes(tmp_path / "conda-lock.yml")
    raw = yaml.safe_load(path.read_text())
    raw["metadata"]["content_hash"] = {"linux-64": "x" * 64}
    path.write_text(yaml.safe_dump(raw))
    assert read_lock(path).content_hash == "x" * 64
