"""Unpacked trees are reused only when they are still the image's; anything else is unpacked again."""

from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
from nd_oci import layer_tar

from envctl.node import trees
from envctl.node.store import AgentError, Store

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Store, list[str], Path]:
    layer = tmp_path / "layer.tar.gz"
    entries = [
        ("dir", "app"),
        ("file", "app/mod.py", b"VERSION = 1\n"),
        ("symlink", "app/link", "mod.py"),
    ]
    layer.write_bytes(gzip.compress(layer_tar(entries)))
    (tmp_path / "envs").mkdir()
    return Store(str(tmp_path / "store")), [str(layer)], tmp_path / "envs" / f"demo@{DIGEST[7:]}"


def test_first_unpack_records_then_reuses_an_intact_tree(setup: tuple[Store, list[str], Path]) -> None:
    store, layers, target = setup
    first = trees.ensure(store, "demo", DIGEST, layers, str(target))
    record = trees.load_record(store, "demo", DIGEST)
    assert record is not None and record["fingerprint"] == first["fingerprint"]
    inode = target.stat().st_ino
    again = trees.ensure(store, "demo", DIGEST, layers, str(target))
    assert again["rebuilt"] is None and target.stat().st_ino == inode  # reused, not unpacked
    assert trees.check(store, "demo", DIGEST, str(target)) is None


@pytest.mark.parametrize("tamper", ["edit", "add", "remove", "chmod"])
def test_a_changed_tree_is_unpacked_again_and_swapped_in(
    setup: tuple[Store, list[str], Path], tamper: str
) -> None:
    store, layers, target = setup
    trees.ensure(store, "demo", DIGEST, layers, str(target))
    mod = target / "app" / "mod.py"
    {
        "edit": lambda: mod.write_text("VERSION = 666\n"),
        "add": lambda: (target / "app" / "evil.py").write_text("x"),
        "remove": mod.unlink,
        "chmod": lambda: mod.chmod(0o777),
    }[tamper]()
    assert "changed" in str(trees.check(store, "demo", DIGEST, str(target)))
    done = trees.ensure(store, "demo", DIGEST, layers, str(target))
    assert "changed" in str(done["rebuilt"])
    assert mod.read_text() == "VERSION = 1\n" and not (target / "app" / "evil.py").exists()
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # nothing left aside


def test_a_tree_without_a_record_is_not_trusted(setup: tuple[Store, list[str], Path]) -> None:
    store, layers, target = setup
    (target / "app").mkdir(parents=True)
    (target / "app" / "mod.py").write_text("planted\n")
    done = trees.ensure(store, "demo", DIGEST, layers, str(target))
    assert "no record" in str(done["rebuilt"])
    assert (target / "app" / "mod.py").read_text() == "VERSION = 1\n"


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_something_else_in_the_way_is_refused_and_left_alone(
    setup: tuple[Store, list[str], Path], tmp_path: Path, kind: str
) -> None:
    store, layers, target = setup
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "keep").write_text("mine")
    if kind == "file":
        target.write_text("in the way")
    else:
        target.symlink_to(decoy)
    with pytest.raises(AgentError, match="in the way"):
        trees.ensure(store, "demo", DIGEST, layers, str(target))
    assert os.path.lexists(target) and (decoy / "keep").read_text() == "mine"


def test_verify_content_finds_a_same_size_same_mtime_edit_and_marks_the_tree_bad(
    setup: tuple[Store, list[str], Path],
) -> None:
    store, layers, target = setup
    trees.ensure(store, "demo", DIGEST, layers, str(target))
    assert trees.verify_content(store, "demo", DIGEST, str(target)) is None
    mod = target / "app" / "mod.py"
    st = mod.stat()
    mod.write_text("VERSION = 9\n")
    os.utime(mod, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert trees.check(store, "demo", DIGEST, str(target)) is None  # the cheap check cannot see it
    assert "differ" in str(trees.verify_content(store, "demo", DIGEST, str(target)))
    assert "differ" in str(trees.check(store, "demo", DIGEST, str(target)))  # remembered
    trees.ensure(store, "demo", DIGEST, layers, str(target))
    assert mod.read_text() == "VERSION = 1\n" and trees.check(store, "demo", DIGEST, str(target)) is None


def test_content_digest_reads_links_as_links(tmp_path: Path) -> None:
    decoy = tmp_path / "decoy.txt"
    decoy.write_text("a")
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "l").symlink_to(decoy)
    before = trees.content_digest(str(tree))
    decoy.write_text("b")  # what the link points at is not part of the tree
    assert trees.content_digest(str(tree)) == before


def test_a_record_that_is_not_one_proves_nothing(setup: tuple[Store, list[str], Path]) -> None:
    store, layers, target = setup
    trees.ensure(store, "demo", DIGEST, layers, str(target))
    path = Path(trees.record_path(store, "demo", DIGEST))
    for junk in ("not json", "[]", '{"digest": "sha256:00", "env": "demo"}'):
        path.write_text(junk)
        assert trees.load_record(store, "demo", DIGEST) is None
        assert "no record" in str(trees.check(store, "demo", DIGEST, str(target)))
