"""envctl pack's archive writers: fixed order, times and owners; its outputs recognised as its own."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from envctl.errors import InputError
from envctl.services.pack import pack


def tree(root: Path, mtime: int) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / pack.META).write_text("{}\n")
    (root / "bin/python").write_text("#!/bin/sh\n")
    (root / "bin/python").chmod(0o4755)  # setuid: dropped in the archive
    (root / "bin/python3").symlink_to("python")
    for path in (root / "bin/python", root / "bin", root / pack.META):
        os.utime(path, (mtime, mtime))
    return root


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_archives_do_not_depend_on_file_times_or_order_on_disk(tmp_path: Path, fmt: str) -> None:
    made = []
    for i, mtime in enumerate((1_000_000, 2_000_000)):
        top = tree(tmp_path / str(i), mtime)
        buf = io.BytesIO()
        entries = list(pack._entries(str(top)))
        assert entries[0] == pack.META and entries == [pack.META, "bin", "bin/python", "bin/python3"]
        if fmt == "tar.gz":
            pack._write_tar(buf, str(top), entries, 1_700_000_000)
        else:
            pack._write_zip(buf, str(top), entries, 1_700_000_000)
        made.append(buf.getvalue())
    assert made[0] == made[1]
    assert pack.KINDS[fmt].recognise(made[0][:4096])
    if fmt == "tar.gz":
        with tarfile.open(fileobj=io.BytesIO(made[0])) as tar:
            members = {m.name: m for m in tar.getmembers()}
        assert members["bin/python"].mode == 0o755 and members["bin/python3"].linkname == "python"
        assert {m.mtime for m in members.values()} == {1_700_000_000} and {
            m.uid for m in members.values()
        } == {0}
    else:
        with zipfile.ZipFile(io.BytesIO(made[0])) as zf:
            assert (zf.getinfo("bin/python").external_attr >> 16) & 0o7777 == 0o755


def test_a_file_that_is_not_envctls_archive_is_not_recognised() -> None:
    assert not pack.KINDS["tar.gz"].recognise(b"\x1f\x8b\x08\x00 not really")
    assert not pack.KINDS["zip"].recognise(b"PK\x03\x04" + b"\0" * 26 + b"other.txt")


def test_unknown_format_and_foreign_output_are_refused_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--format rar"):
        pack._check(pack.PackOptions(tmp_path / "lock", tmp_path / "o", "rar"))
    mine = tmp_path / "mine.tar.gz"
    mine.write_bytes(b"user data")
    with pytest.raises(InputError, match="refusing to replace it"):
        pack._check(pack.PackOptions(tmp_path / "lock", mine, "tar.gz"))


def test_the_image_time_is_the_archive_time() -> None:
    assert pack._epoch("2024-06-01T00:00:00Z") == 1717200000
    assert pack._epoch(None) == 0
