"""Hostile images and state files on real sandbox nodes (issue 9): the push reports each node
failed with a one-line reason and exits 1, the decoy outside the store is untouched, the other
environment on the node still runs, and nothing is left behind.

Every target is a decoy: ``/tmp/decoy`` inside a node is that node's private tmp directory
(a bind mount of its sandbox directory), and the prefix root is the node's private
``/opt/envctl/envs``; nothing here can reach a real system path of this machine.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from envctl.adapters import system
from envctl.cli import cli
from envctl.core import toml_out
from envctl.core.sandbox import SandboxNode, SandboxPlan

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "nodes"))
from json_envelope import assert_envelope
from nd_oci import Entry, layer_tar, sparse_tar, write_layout

pytestmark = pytest.mark.integration

DECOY = "/tmp/decoy"  # as the node sees it
DECOY_MTIME = 1_000_000


def invoke(*args: str) -> tuple[int, dict[str, Any]]:
    """``envctl ARGS --json``; the document is checked against the envelope and the exit rule."""
    argv = list(args)
    argv.insert(argv.index("--") if "--" in argv else len(argv), "--json")
    out = CliRunner().invoke(cli, argv, catch_exceptions=False)
    doc = json.loads(out.stdout)
    schema = "envctl.error/1" if "error_class" in doc else f"envctl.{args[0]}/1"
    assert_envelope(doc, out.exit_code, schema)
    return out.exit_code, doc


def prefix_inventory(cluster: SandboxPlan, where: Path, **settings: Any) -> str:
    """The sandbox inventory with the prefix runtime (plus ``settings``) on every node."""
    from envctl.adapters.files import read_toml

    document = read_toml(Path(cluster.inventory))
    for node in document["nodes"].values():
        node.update(runtime="prefix", **settings)
    path = where / "prefix.toml"
    path.write_text(toml_out.dumps(document))
    return str(path)


def host_path(node: SandboxNode, inside: str) -> Path:
    """Where a node's private path (/tmp/..., /opt/envctl/...) lies on this machine."""
    for source, target in node.mounts():
        if inside == target or inside.startswith(target + "/"):
            return Path(source + inside[len(target) :])
    raise AssertionError(f"{inside} is not private to {node.name}")


def image(where: Path, name: str, *layers: list[Entry] | bytes) -> str:
    root = where / name
    if not root.exists():
        write_layout(root, list(layers), ref=name, cmd=["/bin/sh"])
    return str(root)


@pytest.fixture(scope="module")
def hostile_nodes(
    cluster: SandboxPlan, tmp_path_factory: pytest.TempPathFactory, make_image: Callable[..., Any]
) -> Iterator[tuple[str, Path]]:
    """Every node with the env ``keep`` pushed (the one a hostile image must never touch) and a
    decoy directory in its private /tmp; the prefix inventory and a directory for images."""
    where = tmp_path_factory.mktemp("hostile")
    inv = prefix_inventory(cluster, where)
    with pytest.MonkeyPatch.context() as mp:  # before the per-test ledger exists: a private one
        mp.setenv("ENVCTL_STATE_DIR", str(where / "state"))
        code, doc = invoke("push", str(make_image("keep").root), "-i", inv, "--env", "keep")
    assert code == 0, doc
    yield inv, where
    for node in cluster.nodes:  # this module's environments go; other modules' stay
        envs = host_path(node, "/opt/envctl/envs")
        for env in ("keep", "evil2", "many"):
            host_path(node, f"/var/lib/envctl/state/{env}.json").unlink(missing_ok=True)
            for tree in [envs / env, *envs.glob(f"{env}@*")]:
                subprocess.run(["rm", "-rf", str(tree)], check=True)


@pytest.fixture
def decoys(cluster: SandboxPlan) -> Iterator[list[Path]]:
    """A fresh decoy on each node: mode 0700, an old mtime, one file."""
    made = []
    for node in cluster.nodes:
        decoy = host_path(node, DECOY)
        subprocess.run(["rm", "-rf", str(decoy)], check=True)
        decoy.mkdir(mode=0o700)
        (decoy / "precious").write_text("keep me")
        os.utime(decoy, (DECOY_MTIME, DECOY_MTIME))
        made.append(decoy)
    yield made
    for decoy in made:
        subprocess.run(["rm", "-rf", str(decoy)], check=True)


def assert_untouched(cluster: SandboxPlan, inv: str, decoys: list[Path]) -> None:
    """Decoys as made, `keep` still runs and shows no drift, no temp tree or evil@ tree left."""
    for decoy in decoys:
        st = decoy.stat()
        assert (st.st_mode & 0o7777, int(st.st_mtime)) == (0o700, DECOY_MTIME), decoy
        assert sorted(os.listdir(decoy)) == ["precious"] and (decoy / "precious").read_text() == "keep me"
        assert (decoy / "precious").stat().st_nlink == 1
    for node in cluster.nodes:
        envs = host_path(node, "/opt/envctl/envs")
        assert (envs / "keep" / "app" / "envmod.py").read_text() == "VERSION = 'keep'\n"
        assert not [n for n in os.listdir(envs) if n.startswith(("evil@", ".evil@"))], os.listdir(envs)
    code, st = invoke("status", "keep", "-i", inv)
    assert code == 0 and st["drift"] is False, st
    code, ran = invoke("exec", "-i", inv, "--", "/opt/envctl/envs/keep/app/run.sh")
    assert code == 0 and {n["stdout"] for n in ran["nodes"].values()} == {"envmod keep\n"}


def push_fails(inv: str, layout: str, reason: str, *extra: str) -> dict[str, Any]:
    code, doc = invoke("push", layout, "-i", inv, "--env", "evil", *extra)
    assert code == 1 and doc["ok"] is False, doc
    for name, node in doc["nodes"].items():
        assert node["status"] == "failed", (name, node)
        assert reason in node["error"] and "\n" not in node["error"], (name, node["error"])
        assert "agent bug" not in node["error"] and len(node["error"]) < 700
    return doc


HOSTILE: dict[str, tuple[list[list[Entry] | bytes], str]] = {
    # finding 3: ".wh..." removed the prefix root, every environment with it
    "whiteout-dotdot": ([[("file", "x", b"")], [("file", ".wh...", b"")]], "names no entry"),
    "whiteout-dot": ([[("file", "x", b"")], [("file", "sub/.wh..", b"")]], "names no entry"),
    "whiteout-empty": ([[("file", ".wh.", b"")]], "names no entry"),
    # finding 14: each link alone passed; together c is the prefix root
    "link-chain": ([[("symlink", "b", "."), ("symlink", "c", "b/..")]], "points outside the tree"),
    # hardlink sources resolved inside the tree: through a link out, and through a chain
    "hardlink-via-link": (
        [[("symlink", "l", DECOY), ("hardlink", "h", "l/precious")]],
        "refusing hardlink 'h'",
    ),
    "hardlink-via-chain": (
        [[("symlink", "b", "."), ("symlink", "c", "b/.."), ("hardlink", "h", "c/keep/app/envmod.py")]],
        "refusing hardlink 'h'",
    ),
    # writes through a link out of the tree, whiteouts through it
    "write-via-link": ([[("symlink", "l", DECOY)], [("file", "l/evil", b"x")]], "parent leads outside"),
    "whiteout-via-link": (
        [[("symlink", "l", DECOY)], [("file", "l/.wh.precious", b"")]],
        "parent leads outside",
    ),
    # finding 14: "a/" x 2000 was "agent bug: RecursionError"
    "deep": ([[("file", "a/" * 2000 + "f", b"")]], "deeper than 256 directories"),
    # finding 6: a sparse file past the default limit, refused before a byte is written
    "sparse-100g": ([sparse_tar("huge.bin", 100 << 30)], "unpacks to more than 68719476736 bytes"),
    "long-name": ([[("file", "n" * 300, b"")]], "longer than 255 bytes"),
    "device": ([[("chr", "dev/evil")]], "device node"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_image_fails_every_node_cleanly(
    cluster: SandboxPlan, hostile_nodes: tuple[str, Path], decoys: list[Path], case: str
) -> None:
    inv, where = hostile_nodes
    layers, reason = HOSTILE[case]
    push_fails(inv, image(where, case, *layers), reason)
    assert_untouched(cluster, inv, decoys)


@pytest.mark.parametrize("later", [False, True])
def test_directory_over_a_symlink_replaces_the_link_and_leaves_its_target(
    cluster: SandboxPlan, hostile_nodes: tuple[str, Path], decoys: list[Path], later: bool
) -> None:
    # finding 2: a push made the link's target (a host directory) mode 1777 and reported ok
    inv, where = hostile_nodes
    link, directory = ("symlink", "d", DECOY), ("dir", "d", 0o1777)
    layers = [[link], [directory]] if later else [[link, directory]]
    code, doc = invoke("push", image(where, f"dir-over-link-{later}", *layers), "-i", inv, "--env", "evil2")
    assert code == 0, doc
    for node in cluster.nodes:
        d = host_path(node, "/opt/envctl/envs") / "evil2" / "d"
        assert d.is_dir() and not d.is_symlink() and d.stat().st_mode & 0o7777 == 0o1777
    assert_untouched(cluster, inv, decoys)


def test_sparse_file_over_the_inventory_limit_is_refused(
    cluster: SandboxPlan, hostile_nodes: tuple[str, Path], decoys: list[Path], tmp_path: Path
) -> None:
    # finding 6: a ~100-byte layer holding a sparse 2 GB file became 1.1 GB on a node
    _, where = hostile_nodes
    limited = prefix_inventory(cluster, tmp_path, unpack_max_bytes=1 << 30)
    push_fails(
        limited, image(where, "sparse-2g", sparse_tar("big.bin", 2 << 30)), "unpacks to more than 1073741824"
    )
    assert_untouched(cluster, limited, decoys)


def test_image_of_as_many_layers_as_the_reader_takes_is_delivered(
    cluster: SandboxPlan, hostile_nodes: tuple[str, Path], decoys: list[Path]
) -> None:
    # finding 14: 10,002 layers failed with an empty reason. The image reader now refuses more
    # than MAX_DESCRIPTORS (exit 2, named); up to that, nothing on the way may depend on the
    # count: `have` takes its digests on stdin, not on the remote command line
    from envctl.core.image_check import MAX_DESCRIPTORS

    inv, where = hostile_nodes
    count = MAX_DESCRIPTORS
    layers: list[list[Entry] | bytes] = [
        layer_tar([("file", f"f{i % 5}", str(i).encode())]) for i in range(count)
    ]
    code, doc = invoke(
        "push", image(where, "many-layers", *layers), "-i", inv, "--env", "many", "--limit", "n1"
    )
    assert code == 0, str(doc)[:2000]
    envs = host_path(cluster.nodes[0], "/opt/envctl/envs")
    assert (envs / "many" / "f1").read_text() == str(max(i for i in range(count) if i % 5 == 1))
    assert_untouched(cluster, inv, decoys)


@pytest.fixture
def tiny_prefix_root(cluster: SandboxPlan) -> Iterator[tuple[str, list[str]]]:
    """A tmpfs with 16 inodes mounted at /tmp/tiny inside n1's own mount namespace (private
    to it, unmounted after): the kernel's ENOSPC on file creation, not envctl's estimate."""
    node = cluster.nodes[0]
    host_path(node, "/tmp/tiny").mkdir(exist_ok=True)
    pid = system.read_pid(node.path("sshd.pid"), "sshd")
    assert pid is not None, "n1's sshd is not running"
    ns = ["nsenter", "-t", str(pid), "-m", "--"]
    subprocess.run(
        [*ns, "mount", "-t", "tmpfs", "-o", "size=4m,nr_inodes=16", "nd-tiny", "/tmp/tiny"], check=True
    )
    try:
        yield "/tmp/tiny", ns
    finally:
        subprocess.run([*ns, "umount", "/tmp/tiny"], check=True)
        host_path(node, "/tmp/tiny").rmdir()


def test_disk_full_in_the_prefix_root_names_the_prefix_root(
    cluster: SandboxPlan,
    hostile_nodes: tuple[str, Path],
    tiny_prefix_root: tuple[str, list[str]],
    tmp_path: Path,
) -> None:
    # finding 14: ENOSPC in the prefix root was reported as "the store: No space left"
    _, where = hostile_nodes
    tiny, ns = tiny_prefix_root
    inv = prefix_inventory(cluster, tmp_path, prefix_root=f"{tiny}/envs")
    files: list[Entry] = [("file", f"f{i:02d}", random.Random(i).randbytes(100)) for i in range(40)]
    doc = push_fails(
        inv, image(where, "many-files", files), "No space left on device while unpacking", "--limit", "n1"
    )
    assert doc["nodes"]["n1"]["error"].startswith(f"prepare: n1: {tiny}/envs: No space left")
    assert "the store" not in doc["nodes"]["n1"]["error"]
    left = subprocess.run([*ns, "ls", "-A", f"{tiny}/envs"], capture_output=True, text=True, check=True)
    assert left.stdout == ""  # the temporary tree is gone


def test_a_bad_state_file_is_reported_alone_by_status_and_gc(
    cluster: SandboxPlan, hostile_nodes: tuple[str, Path], decoys: list[Path]
) -> None:
    # finding 12: one record without "env" made state and gc fail for every environment
    inv, _ = hostile_nodes
    bad = host_path(cluster.nodes[0], "/var/lib/envctl/state/broken.json")
    bad.write_text(json.dumps({"current": {"digest": "sha256:" + "0" * 64}}))
    try:
        code, st = invoke("status", "-i", inv)
        assert code == 1 and st["drift"] is True  # the bad file is drift...
        n1 = st["nodes"]["n1"]["envs"]
        assert n1["broken"]["drift"].startswith("unreadable state") and n1["keep"]["drift"] is None
        assert all(n["envs"]["keep"]["drift"] is None for n in st["nodes"].values())  # ...alone
        code, doc = invoke("gc", "-i", inv, "--max-age", "0")
        assert code == 0 and all(n["ok"] for n in doc["nodes"].values()), doc
    finally:
        bad.unlink()
    assert_untouched(cluster, inv, decoys)
