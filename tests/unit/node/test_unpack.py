"""Safe unpacking: each hostile entry is refused by name and leaves nothing behind."""

from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
from nd_oci import Entry, layer_tar

from envctl.node.unpack import UnpackError, fingerprint, unpack_layers


def _layers(tmp_path: Path, *layers: list[Entry]) -> list[str]:
    paths = []
    for i, entries in enumerate(layers):
        p = tmp_path / f"layer{i}.tar.gz"
        p.write_bytes(gzip.compress(layer_tar(entries)))
        paths.append(str(p))
    return paths


HOSTILE: dict[str, tuple[Entry, str]] = {
    "absolute": (("file", "/etc/evil", b"x"), "absolute path"),
    "dotdot": (("file", "a/../../evil", b"x"), "'..'"),
    "symlink-up": (("symlink", "sub/lnk", "../../outside"), "points outside"),
    "hardlink-out": (("hardlink", "hl", "../outside.txt"), "'..'"),
    "hardlink-abs": (("hardlink", "hl", "/etc/passwd"), "absolute path"),
    "device": (("chr", "dev/null"), "device node"),
    "fifo": (("fifo", "pipe"), "FIFO"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_entry_is_refused_and_nothing_is_left(tmp_path: Path, case: str) -> None:
    entry, reason = HOSTILE[case]
    (tmp_path / "outside.txt").write_text("secret")
    root = tmp_path / "envs"
    root.mkdir()
    layers = _layers(tmp_path, [("dir", "sub"), ("file", "ok.txt", b"fine"), entry])
    with pytest.raises(UnpackError) as err:
        unpack_layers(layers, str(root / "e@1"))
    assert reason in str(err.value)
    assert repr(entry[1]) in str(err.value)  # names the entry
    assert os.listdir(root) == []  # neither the target nor a temp tree
    assert not Path("/etc/evil").exists()


def test_write_through_symlinked_parent_is_refused(tmp_path: Path) -> None:
    # a later layer may not write through a directory symlink that an earlier layer made
    root = tmp_path / "envs"
    root.mkdir()
    layers = _layers(tmp_path, [("dir", "real"), ("symlink", "alias", "real")], [("file", "alias/x", b"ok")])
    unpack_layers(layers, str(root / "e@1"))
    assert (root / "e@1" / "real" / "x").read_bytes() == b"ok"


def test_layers_apply_in_order_with_whiteouts(tmp_path: Path) -> None:
    layers = _layers(
        tmp_path,
        [
            ("dir", "d"),
            ("file", "d/a", b"1"),
            ("file", "d/b", b"2"),
            ("file", "gone", b"3"),
            ("dir", "o"),
            ("file", "o/old", b"4"),
        ],
        [
            ("file", "d/a", b"new"),
            ("file", ".wh.gone", b""),
            ("file", "o/.wh..wh..opq", b""),
            ("file", "o/fresh", b"5"),
            ("hardlink", "d/a2", "d/a"),
        ],
    )
    target = tmp_path / "t"
    unpack_layers(layers, str(target))
    assert (target / "d" / "a").read_bytes() == b"new"
    assert (target / "d" / "b").read_bytes() == b"2"
    assert not (target / "gone").exists()
    assert sorted(os.listdir(target / "o")) == ["fresh"]
    assert os.stat(target / "d" / "a2").st_ino == os.stat(target / "d" / "a").st_ino


def test_setuid_bits_are_dropped(tmp_path: Path) -> None:
    layers = _layers(tmp_path, [("file", "suid", b"x", 0o4755)])
    unpack_layers(layers, str(tmp_path / "t"))
    assert os.stat(tmp_path / "t" / "suid").st_mode & 0o7777 == 0o755


def test_fingerprint_sees_edits_but_not_pycache(tmp_path: Path) -> None:
    layers = _layers(tmp_path, [("dir", "m"), ("file", "m/mod.py", b"X = 1\n")])
    target = tmp_path / "t"
    unpack_layers(layers, str(target))
    before = fingerprint(str(target))
    (target / "m" / "__pycache__").mkdir()
    (target / "m" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
    assert fingerprint(str(target)) == before
    (target / "m" / "mod.py").write_text("X = 2\n")
    assert fingerprint(str(target)) != before


def test_absolute_symlink_is_rooted_in_the_image_and_never_written_through(tmp_path: Path) -> None:
    # Root filesystems are full of these (dev/fd -> /proc/self/fd, venv python -> /usr/bin/...):
    # kept as links, meaningful inside the environment's root.
    root = tmp_path / "envs"
    root.mkdir()
    unpack_layers(_layers(tmp_path, [("symlink", "fd", "/proc/self/fd")]), str(root / "e@1"))
    assert os.readlink(root / "e@1" / "fd") == "/proc/self/fd"
    # ...but a later entry may not write through one to the host.
    outside = tmp_path / "host"
    outside.mkdir()
    layers = _layers(tmp_path, [("symlink", "etc", str(outside))], [("file", "etc/evil", b"x")])
    with pytest.raises(UnpackError, match="parent leads outside"):
        unpack_layers(layers, str(root / "e@2"))
    assert not (outside / "evil").exists()


def test_a_layer_that_is_not_a_tar_is_refused_by_name(tmp_path: Path) -> None:
    layer = tmp_path / "0123456789abcdef"
    layer.write_bytes(b"\x28\xb5\x2f\xfd" + b"zstd frames are not supported" * 20)
    with pytest.raises(UnpackError, match="layer 0123456789ab: not a readable tar"):
        unpack_layers([str(layer)], str(tmp_path / "t"))
    assert not (tmp_path / "t").exists()
