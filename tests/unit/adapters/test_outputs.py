"""Outputs are owned: envctl replaces only what it made, atomically, under the user's umask.

Every target here is a decoy inside the test's own temporary directory.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from envctl.adapters import outputs
from envctl.adapters.outputs import (
    EXPORT,
    MARKER,
    OCI_LAYOUT,
    check_file_target,
    owned_dir,
    write_owned_file,
)
from envctl.errors import InputError


def _fill(directory: Path, version: str) -> None:
    (directory / "index.json").write_text(version)
    (directory / "blobs").mkdir()
    (directory / "blobs" / "b").write_text(version)


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def umask_027() -> Iterator[None]:
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_directory_is_written_with_its_marker(tmp_path: Path) -> None:
    with owned_dir(tmp_path / "out", OCI_LAYOUT) as tmp:
        _fill(tmp, "1")
    marker = json.loads((tmp_path / "out" / MARKER).read_text())
    assert marker["kind"] == "oci-layout" and marker["entries"] == ["blobs", "index.json"]
    assert _tree(tmp_path / "out")["index.json"] == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no scratch left beside it


@pytest.mark.parametrize("content", ["file", "dir", "cwd"])
def test_what_envctl_did_not_make_is_refused_and_kept(
    tmp_path: Path, content: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "victim"
    if content == "file":
        target.write_text("precious")
    else:
        target.mkdir()
        (target / "main.py").write_text("precious")
    if content == "cwd":
        monkeypatch.chdir(target)
        target = Path(".")
    before = _tree(tmp_path)
    with pytest.raises(InputError) as info, owned_dir(target, OCI_LAYOUT) as tmp:
        _fill(tmp, "1")
    assert info.value.exit_code == 2 and info.value.hint and "\n" not in info.value.message
    assert _tree(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["victim"]


def test_an_envctl_output_of_the_same_kind_is_replaced_whole(tmp_path: Path) -> None:
    for version in ("1", "2"):
        with owned_dir(tmp_path / "out", OCI_LAYOUT) as tmp:
            _fill(tmp, version)
            if version == "1":
                (tmp / "only-in-1").write_text("x")
    assert _tree(tmp_path / "out")["index.json"] == "2"
    assert not (tmp_path / "out" / "only-in-1").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_another_kind_of_envctl_output_is_refused(tmp_path: Path) -> None:
    with owned_dir(tmp_path / "out", outputs.DOCKERFILE_CONTEXT) as tmp:
        (tmp / "Dockerfile").write_text("FROM x")
    with pytest.raises(InputError, match="dockerfile-context"), owned_dir(tmp_path / "out", OCI_LAYOUT):
        pass


def test_force_replaces_only_the_outputs_own_entries(tmp_path: Path) -> None:
    target = tmp_path / "proj"
    target.mkdir()
    (target / "main.py").write_text("precious")
    (target / "index.json").write_text("old index")
    for version in ("1", "2"):
        with owned_dir(target, OCI_LAYOUT, force=version == "1") as tmp:
            _fill(tmp, version)
    assert (target / "main.py").read_text() == "precious"  # the user's file survives both
    assert _tree(target)["index.json"] == "2"
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "blobs", "index.json", "main.py"]


def test_the_current_directory_is_written_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for version in ("1", "2"):
        with owned_dir(Path("."), OCI_LAYOUT) as tmp:
            _fill(tmp, version)
    assert Path.cwd() == tmp_path and _tree(tmp_path)["index.json"] == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == [MARKER, "blobs", "index.json"]


def test_a_failed_write_leaves_the_old_output(tmp_path: Path) -> None:
    with owned_dir(tmp_path / "out", OCI_LAYOUT) as tmp:
        _fill(tmp, "1")
    before = _tree(tmp_path / "out")
    with pytest.raises(RuntimeError), owned_dir(tmp_path / "out", OCI_LAYOUT) as tmp:
        _fill(tmp, "2")
        raise RuntimeError("the build failed")
    assert _tree(tmp_path / "out") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_the_root_directory_is_refused_even_with_force() -> None:
    with pytest.raises(InputError, match="root directory"), owned_dir(Path("/"), OCI_LAYOUT, force=True):
        pass


@pytest.mark.parametrize("where", ["/proc/envctl-test-output", "/sys/envctl-test-output", "/dev/envctl-x"])
def test_pseudo_filesystems_are_refused(where: str) -> None:
    with pytest.raises(InputError, match="pseudo-filesystem"), owned_dir(Path(where), OCI_LAYOUT):
        pass
    with pytest.raises(InputError, match="pseudo-filesystem"):
        check_file_target(Path(where), EXPORT)


def test_files_are_replaced_only_when_envctl_wrote_them(tmp_path: Path) -> None:
    target = tmp_path / "req.txt"
    target.write_text("precious")
    with pytest.raises(InputError, match="refusing to replace"):
        write_owned_file(target, "# envctl export x\n", EXPORT)
    assert target.read_text() == "precious"
    write_owned_file(target, "# envctl export 1\n", EXPORT, force=True)
    write_owned_file(target, "# envctl export 2\n", EXPORT)  # now it is an export: replaced
    assert target.read_text() == "# envctl export 2\n"
    empty = tmp_path / "empty.txt"
    empty.touch()
    write_owned_file(empty, "# envctl export\n", EXPORT)  # an empty file holds nothing to lose


def test_a_directory_or_fifo_is_never_replaced_by_a_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    for name, words in (("fifo", "not a regular file"), ("dir", "is a directory")):
        with pytest.raises(InputError, match=words):
            write_owned_file(tmp_path / name, "# envctl export\n", EXPORT, force=True)
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode)


def test_writes_honour_the_umask(tmp_path: Path, umask_027: None) -> None:
    write_owned_file(tmp_path / "f.txt", "# envctl export\n", EXPORT)
    with owned_dir(tmp_path / "out", OCI_LAYOUT) as tmp:
        _fill(tmp, "1")
    assert stat.S_IMODE(os.stat(tmp_path / "f.txt").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(tmp_path / "out").st_mode) == 0o750
