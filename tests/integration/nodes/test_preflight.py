"""Push preflight on the real sandbox nodes: an image that records a need the nodes cannot meet is
refused by name before a byte moves (the node's store is unchanged); ``--skip-preflight`` goes
ahead and says so."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from envctl.cli import cli
from envctl.core.image_needs import ImageNeeds, needs_labels
from envctl.core.sandbox import SandboxPlan

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "nodes"))
from json_envelope import assert_envelope
from nd_oci import write_layout

from tests.integration.nodes.conftest import busybox_layers

pytestmark = pytest.mark.integration


def layout(root: Path, version: str, needs: ImageNeeds) -> Path:
    write_layout(root, busybox_layers(version), ref="pre", cmd=["/bin/sh"], labels=needs_labels(needs))
    return root


def push(*args: str) -> tuple[int, dict, str]:
    out = CliRunner().invoke(cli, ["push", *args, "--json"], catch_exceptions=False)
    doc = json.loads(out.stdout)
    assert_envelope(doc, out.exit_code, "envctl.push/1")
    return out.exit_code, doc, out.stderr


def store_files(cluster: SandboxPlan) -> dict[str, set[str]]:
    """Every file in every node's store as the host sees it, but the agent's own bundle (asking a
    node for its facts installs the agent; no image blob, state or tree comes with it)."""
    out = {}
    for node in cluster.nodes:
        root = Path(node.path("store"))
        found = {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()
        out[node.name] = {f for f in found if f.split("/")[0] != "agent"}
    return out


def test_glibc_floor_above_the_nodes_refuses_each_by_name_and_moves_no_bytes(
    cluster: SandboxPlan, tmp_path: Path
) -> None:
    glibc = os.confstr("CS_GNU_LIBC_VERSION").split()[-1]  # the nodes run this machine's glibc
    image = layout(tmp_path / "img", "pre-glibc", ImageNeeds(arch="amd64", glibc="9.99", unpacked=1))
    before = store_files(cluster)
    code, doc, _ = push(str(image), "-i", cluster.inventory, "--env", "pre")
    assert code == 1 and doc["outcome"] == "none" and doc["bytes_sent"] == 0
    assert doc["preflight"]["skipped"] is False and doc["preflight"]["recorded"] is True
    assert set(doc["preflight"]["refused"]) == {"n1", "n2", "n3"}
    for name, entry in doc["nodes"].items():
        assert not entry["ok"] and entry["status"] == "failed" and entry["bytes_sent"] == 0
        assert entry["error"] == f"preflight: glibc {glibc} is older than this image's 9.99 floor"
        assert "upgrade the node's OS" in entry["hint"]
        assert doc["preflight"]["refused"][name][0]["code"] == "glibc"
    assert store_files(cluster) == before
    # the table names the node, the reason and the fix
    out = CliRunner().invoke(
        cli, ["push", str(image), "-i", cluster.inventory, "--env", "pre", "--limit", "n2"]
    )
    assert out.exit_code == 1
    assert f"refused n2: glibc {glibc} is older than this image's 9.99 floor: upgrade" in out.stdout
    assert store_files(cluster) == before
    # the refusal is in the ledger
    hist = json.loads(CliRunner().invoke(cli, ["history", "--json"]).stdout)
    assert hist["events"][0]["kind"] == "push" and hist["events"][0]["outcome"] != "ok"


def test_unpacked_size_above_the_free_space_refuses_the_node(cluster: SandboxPlan, tmp_path: Path) -> None:
    image = layout(tmp_path / "img", "pre-big", ImageNeeds(arch="amd64", unpacked=1 << 60))
    before = store_files(cluster)
    code, doc, _ = push(str(image), "-i", cluster.inventory, "--env", "pre", "--limit", "n3")
    assert code == 1 and set(doc["nodes"]) == {"n3"}
    entry = doc["nodes"]["n3"]
    assert entry["error"].startswith("preflight: the store ") and "the image unpacks to" in entry["error"]
    assert "envctl gc" in entry["hint"]
    assert store_files(cluster) == before


def test_skip_preflight_pushes_anyway_and_says_so(cluster: SandboxPlan, tmp_path: Path) -> None:
    image = layout(tmp_path / "img", "pre-skip", ImageNeeds(arch="amd64", glibc="9.99", unpacked=1))
    code, doc, stderr = push(str(image), "-i", cluster.inventory, "--env", "preskip", "--skip-preflight")
    assert code == 0 and doc["outcome"] == "all"
    assert doc["preflight"] == {"skipped": True, "recorded": False, "needs": None, "refused": {}}
    assert "warning: --skip-preflight: no node's driver, GPUs, glibc" in stderr
    assert all(n["status"] == "ok" and n["bytes_sent"] > 0 for n in doc["nodes"].values())


def test_an_image_whose_needs_the_nodes_meet_passes(cluster: SandboxPlan, tmp_path: Path) -> None:
    image = layout(tmp_path / "img", "pre-ok", ImageNeeds(arch="amd64", glibc="2.17", unpacked=1 << 20))
    code, doc, _ = push(str(image), "-i", cluster.inventory, "--env", "preok")
    assert code == 0 and doc["outcome"] == "all" and doc["preflight"]["refused"] == {}
    assert doc["preflight"]["needs"]["glibc"] == "2.17"
