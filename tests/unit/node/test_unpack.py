"""Safe unpacking: each hostile entry is refused by name and leaves nothing behind."""

from __future__ import annotations

import gzip
import os
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
from nd_oci import Entry, layer_tar, sparse_tar

from envctl.node.unpack import fingerprint, unpack_layers
from envctl.node.unpack_policy import Limits, UnpackError


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


# ---------------------------------------------------------------- hostile images (issue 9)
# Every path an entry aims at is a decoy inside tmp_path; the unpacker runs as root on nodes.


def _decoy(tmp_path: Path) -> tuple[Path, tuple[int, int]]:
    """A directory outside the tree, with a file in it, and its (mode, mtime) to compare."""
    decoy = tmp_path / "decoy"
    decoy.mkdir(mode=0o700)
    (decoy / "precious").write_text("keep")
    os.utime(decoy, (1_000_000, 1_000_000))
    st = os.stat(decoy)
    return decoy, (st.st_mode, st.st_mtime_ns)


def _prefix(tmp_path: Path) -> Path:
    """A prefix root holding another environment, which no failed unpack may touch."""
    root = tmp_path / "envs"
    (root / "other@1").mkdir(parents=True)
    (root / "other@1" / "file").write_text("other env")
    os.symlink("other@1", root / "other")
    return root


def _untouched(root: Path, decoy: Path, seen: tuple[int, int]) -> None:
    st = os.stat(decoy)
    assert (st.st_mode, st.st_mtime_ns) == seen
    assert (decoy / "precious").read_text() == "keep"
    assert sorted(os.listdir(root)) == ["other", "other@1"]  # nothing left behind either
    assert (root / "other" / "file").read_text() == "other env"


@pytest.mark.parametrize("later_layer", [False, True])
def test_directory_entry_over_a_symlink_replaces_the_link_never_follows_it(
    tmp_path: Path, later_layer: bool
) -> None:
    # finding 2: symlink d -> DECOY, then a directory entry d (mode 1777): the decoy was chmodded
    decoy, seen = _decoy(tmp_path)
    root = _prefix(tmp_path)
    link, directory = ("symlink", "d", str(decoy)), ("dir", "d", 0o1777)
    layers = [[link], [directory, ("file", "d/x", b"in")]] if later_layer else [[link, directory]]
    unpack_layers(_layers(tmp_path, *layers), str(root / "e@1"))
    tree = root / "e@1"
    assert not (tree / "d").is_symlink() and (tree / "d").is_dir()  # a real directory now
    assert os.stat(tree / "d").st_mode & 0o7777 == 0o1777
    st = os.stat(decoy)
    assert (st.st_mode, st.st_mtime_ns) == seen
    assert os.listdir(decoy) == ["precious"]


def test_directory_entry_over_a_relative_symlink_changes_nothing_it_pointed_at(tmp_path: Path) -> None:
    # the variant that changed the mtime of /: here the "/" is an in-tree directory
    root = tmp_path / "envs"
    root.mkdir()
    layers = _layers(
        tmp_path,
        [("dir", "real", 0o755), ("symlink", "up", "real")],
        [("dir", "up", 0o700)],
    )
    unpack_layers(layers, str(root / "e@1"))
    tree = root / "e@1"
    assert os.stat(tree / "real").st_mode & 0o7777 == 0o755
    assert (tree / "up").is_dir() and not (tree / "up").is_symlink()


@pytest.mark.parametrize(
    "name",
    [".wh...", ".wh..", ".wh.", "sub/.wh...", "sub/.wh..", "sub/.wh."],
)
def test_whiteout_naming_no_entry_is_refused_and_removes_nothing(tmp_path: Path, name: str) -> None:
    # finding 3: ".wh..." removed join(dirname(dest), "..") -- the prefix root with every env in it
    decoy, seen = _decoy(tmp_path)
    root = _prefix(tmp_path)
    layers = _layers(tmp_path, [("dir", "sub"), ("file", "sub/keep", b"1")], [("file", name, b"")])
    with pytest.raises(UnpackError, match="names no entry") as err:
        unpack_layers(layers, str(root / "e@1"))
    assert repr(name) in str(err.value)
    _untouched(root, decoy, seen)


def test_whiteouts_apply_to_lower_layers_only_and_skip_aufs_metadata(tmp_path: Path) -> None:
    layers = _layers(
        tmp_path,
        [("dir", "d"), ("file", "d/old", b"1")],
        [("file", "d/new", b"2"), ("file", "d/.wh.new", b""), ("file", "d/.wh.old", b"")],
        [("dir", ".wh..wh.plnk"), ("file", ".wh..wh.aufs", b"")],
    )
    target = tmp_path / "t"
    unpack_layers(layers, str(target))
    assert sorted(os.listdir(target / "d")) == ["new"]  # same-layer whiteout spares its layer (OCI)
    assert sorted(os.listdir(target)) == ["d"]


def test_whiteout_or_opaque_through_a_symlink_out_of_the_tree_is_refused(tmp_path: Path) -> None:
    decoy, seen = _decoy(tmp_path)
    root = _prefix(tmp_path)
    for entry in ("l/.wh.precious", "l/.wh..wh..opq"):
        layers = _layers(tmp_path, [("symlink", "l", str(decoy))], [("file", entry, b"")])
        with pytest.raises(UnpackError, match="parent leads outside"):
            unpack_layers(layers, str(root / "e@1"))
        _untouched(root, decoy, seen)


def test_relative_symlink_chain_that_climbs_out_is_refused(tmp_path: Path) -> None:
    # finding 14: b -> . and c -> b/.. each pass a lexical check; together c is the prefix root
    root = _prefix(tmp_path)
    layers = _layers(tmp_path, [("symlink", "b", "."), ("symlink", "c", "b/..")])
    with pytest.raises(UnpackError, match=re.escape("'c' -> 'b/..': it points outside the tree")):
        unpack_layers(layers, str(root / "e@1"))
    assert sorted(os.listdir(root)) == ["other", "other@1"]


def test_symlink_that_climbs_out_only_after_a_later_layer_is_refused(tmp_path: Path) -> None:
    # sub/c -> ../b/.. is the tree's root while b is a directory; once a later layer makes b a
    # link to ".", the same sub/c is the tree's parent: only the finished tree can tell
    root = _prefix(tmp_path)
    first = [("dir", "b"), ("dir", "sub"), ("symlink", "sub/c", "../b/..")]
    unpack_layers(_layers(tmp_path, first), str(root / "e@1"))  # fine
    layers = _layers(tmp_path, first, [("symlink", "b", ".")])
    with pytest.raises(UnpackError, match=re.escape("'sub/c' -> '../b/..': it points outside")):
        unpack_layers(layers, str(root / "e@2"))
    assert sorted(os.listdir(root)) == ["e@1", "other", "other@1"]


@pytest.mark.parametrize(
    "entries",
    [
        # a hardlink's source through a symlinked directory that leads out of the tree
        [("symlink", "l", "{decoy}"), ("hardlink", "h", "l/precious")],
        # ... through an absolute symlink to the file itself
        [("symlink", "s", "{decoy}/precious"), ("hardlink", "h", "s")],
        # ... through a relative chain that climbs out
        [("symlink", "b", "."), ("hardlink", "h", "b/../decoy/precious")],
        # a source that is a directory, or missing
        [("dir", "d"), ("hardlink", "h", "d")],
        [("hardlink", "h", "missing")],
    ],
)
def test_hardlinks_stay_inside_the_tree(tmp_path: Path, entries: list[Entry]) -> None:
    decoy, seen = _decoy(tmp_path)
    root = _prefix(tmp_path)
    fixed = [tuple(str(v).format(decoy=decoy) for v in e) for e in entries]
    with pytest.raises(UnpackError, match="hardlink 'h'"):
        unpack_layers(_layers(tmp_path, fixed), str(root / "e@1"))
    _untouched(root, decoy, seen)
    assert os.stat(decoy / "precious").st_nlink == 1


def test_hardlink_through_an_in_tree_symlink_links_the_file(tmp_path: Path) -> None:
    layers = _layers(
        tmp_path,
        [
            ("dir", "real"),
            ("file", "real/f", b"x"),
            ("symlink", "alias", "real"),
            ("symlink", "fl", "real/f"),
        ],
        [("hardlink", "h1", "alias/f"), ("hardlink", "h2", "fl")],
    )
    target = tmp_path / "t"
    unpack_layers(layers, str(target))
    ino = os.stat(target / "real" / "f").st_ino
    assert os.lstat(target / "h1").st_ino == ino and os.lstat(target / "h2").st_ino == ino


def test_sparse_file_counts_at_its_apparent_size_and_stays_sparse(tmp_path: Path) -> None:
    # finding 6: a ~100-byte layer holding a sparse 2 GB file became 1.1 GB on a node
    layer = tmp_path / "sparse.tar.gz"
    layer.write_bytes(gzip.compress(sparse_tar("big.bin", 2 << 30)))
    assert layer.stat().st_size < 200
    root = _prefix(tmp_path)
    with pytest.raises(UnpackError, match=r"unpacks to more than 1073741824 bytes .*unpack_max_bytes"):
        unpack_layers([str(layer)], str(root / "e@1"), Limits(max_bytes=1 << 30))
    assert sorted(os.listdir(root)) == ["other", "other@1"]
    unpack_layers([str(layer)], str(root / "e@2"))  # within the default: kept, as a sparse file
    big = os.stat(root / "e@2" / "big.bin")
    assert big.st_size == 2 << 30 and big.st_blocks * 512 <= 2 << 20  # holes: ~1 MiB written
    with open(root / "e@2" / "big.bin", "rb") as fh:
        fh.seek((2 << 30) - 3)
        assert fh.read() == b"end"


def test_sparse_file_past_the_default_limit_is_refused_before_a_byte_is_written(tmp_path: Path) -> None:
    layer = tmp_path / "huge.tar.gz"
    layer.write_bytes(gzip.compress(sparse_tar("huge.bin", 100 << 30)))
    with pytest.raises(UnpackError, match=re.escape("'huge.bin': the image unpacks to more than")):
        unpack_layers([str(layer)], str(tmp_path / "t"))
    assert not (tmp_path / "t").exists()


def test_entry_count_and_depth_limits_name_their_inventory_key(tmp_path: Path) -> None:
    many = _layers(tmp_path, [("file", f"f{i}", b"") for i in range(11)])
    with pytest.raises(UnpackError, match=r"more than 10 entries .*unpack_max_entries"):
        unpack_layers(many, str(tmp_path / "t"), Limits(max_entries=10))
    deep = _layers(tmp_path, [("file", "a/" * 9 + "f", b"")])
    with pytest.raises(UnpackError, match=r"deeper than 8 directories .*unpack_max_depth"):
        unpack_layers(deep, str(tmp_path / "t"), Limits(max_depth=8))
    assert not (tmp_path / "t").exists()


def test_very_deep_path_is_refused_by_name_not_a_recursion_error(tmp_path: Path) -> None:
    # finding 14: "a/" x 2000 ended as "agent bug: RecursionError"
    deep = "a/" * 2000 + "f"
    with pytest.raises(UnpackError, match=r"refusing 'a/a/a.*\.\.\. \(4001 characters\): deeper than 256"):
        unpack_layers(_layers(tmp_path, [("file", deep, b"x")]), str(tmp_path / "t"))


def test_a_symlink_loop_of_directories_cannot_deepen_the_tree_past_the_limit(tmp_path: Path) -> None:
    # x -> x/y/z... spliced again and again: refused at the depth limit, not a RecursionError
    layers = _layers(tmp_path, [("dir", "d"), ("symlink", "d/l", "../d/l/n")], [("file", "d/l/f", b"")])
    with pytest.raises(UnpackError, match=r"symbolic links|deeper than"):
        unpack_layers(layers, str(tmp_path / "t"))


def test_long_names_and_targets_are_refused_with_a_cut_message(tmp_path: Path) -> None:
    for entry, reason in (
        (("file", "x" * 300, b""), "a name longer than 255 bytes"),
        (("file", "d/" * 100 + "y" * 4000, b""), "longer than 4095 bytes"),
        (("symlink", "l", "t" * 5000), "not a usable link target"),
    ):
        with pytest.raises(UnpackError, match=reason) as err:
            unpack_layers(_layers(tmp_path, [entry]), str(tmp_path / "t"))
        assert len(str(err.value)) < 700  # the name is cut (~200 characters), its length said


def test_oversized_pax_header_is_refused_not_read_into_memory(tmp_path: Path) -> None:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("x")
        info.pax_headers = {"comment": "c" * (2 << 20)}
        tar.addfile(info, io.BytesIO(b""))
    layer = tmp_path / "pax.tar.gz"
    layer.write_bytes(gzip.compress(buf.getvalue()))
    with pytest.raises(UnpackError, match=r"not a readable tar.*headers exceed 1048576 bytes"):
        unpack_layers([str(layer)], str(tmp_path / "t"))


def test_out_of_range_mtime_and_nul_names_are_refused_by_entry(tmp_path: Path) -> None:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("when")
        info.mtime = 10**20
        tar.addfile(info, io.BytesIO(b""))
    layer = tmp_path / "mtime.tar"
    layer.write_bytes(buf.getvalue())
    with pytest.raises(UnpackError, match="refusing 'when'"):
        unpack_layers([str(layer)], str(tmp_path / "t"))


def test_disk_full_names_the_prefix_root_and_the_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # finding 14: ENOSPC in the prefix root was reported as "the store: No space left"
    import errno

    root = _prefix(tmp_path)
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        if fd > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(UnpackError) as err:
        unpack_layers(_layers(tmp_path, [("file", "data.bin", b"\1" * 100)]), str(root / "e@1"))
    monkeypatch.undo()
    assert err.value.kind == "nospace"
    assert str(err.value).startswith(f"{root}: No space left on device while unpacking 'data.bin' of layer")
    assert sorted(os.listdir(root)) == ["other", "other@1"]


def test_a_file_larger_than_the_free_space_is_refused_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Tiny:
        f_bavail, f_frsize = 10, 4096

    monkeypatch.setattr(os, "statvfs", lambda _fd: Tiny())
    root = _prefix(tmp_path)
    with pytest.raises(
        UnpackError, match=r"No space left on device for 'big' of layer .* \(100000 bytes, 40960 free\)"
    ) as err:
        unpack_layers(_layers(tmp_path, [("file", "big", b"\1" * 100_000)]), str(root / "e@1"))
    assert err.value.kind == "nospace"


def test_ten_thousand_layers_unpack(tmp_path: Path) -> None:
    # finding 14's image of 10,002 layers: nothing on the node side may depend on a layer count
    layers = []
    for i in range(10_002):
        p = tmp_path / f"l{i}"
        p.write_bytes(layer_tar([("file", f"f{i % 7}", str(i).encode())]))
        layers.append(str(p))
    unpack_layers(layers, str(tmp_path / "t"))
    assert (tmp_path / "t" / "f0").read_bytes() == b"9996"


def test_file_in_the_way_of_a_directory_path_is_refused(tmp_path: Path) -> None:
    layers = _layers(tmp_path, [("file", "f", b"")], [("file", "f/x", b"")])
    with pytest.raises(UnpackError, match="'f' on its path is not a directory"):
        unpack_layers(layers, str(tmp_path / "t"))
