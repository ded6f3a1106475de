"""A multi-platform layout (an image index over linux/amd64 and linux/arm64) pushes to real
nodes as its linux/amd64 image, through the CLI, and status reports that manifest."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from envctl.cli import cli
from envctl.core.sandbox import SandboxPlan

pytestmark = pytest.mark.integration


def invoke(*args: str) -> tuple[int, dict[str, Any]]:
    out = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return out.exit_code, json.loads(out.stdout)


@pytest.mark.parametrize("nested", [False, True], ids=["index.json", "nested-index"])
def test_multi_platform_layout_pushes_its_amd64_image(
    cluster: SandboxPlan, make_platform_layout: Callable[..., tuple[Path, dict[str, str]]], nested: bool
) -> None:
    layout, digests = make_platform_layout(nested)
    env = f"multi-{'nested' if nested else 'flat'}"
    code, doc = invoke("push", str(layout), "-i", cluster.inventory, "--env", env, "--json")
    assert code == 0, doc
    assert set(doc["nodes"]) == {"n1", "n2", "n3"}
    assert all(n["status"] == "ok" and n["bytes_sent"] > 0 for n in doc["nodes"].values()), doc
    code, st = invoke("status", env, "-i", cluster.inventory, "--json")
    assert code == 0 and st["drift"] is False, st
    actual = {name: node["envs"][env]["actual"] for name, node in st["nodes"].items()}
    assert actual == dict.fromkeys(("n1", "n2", "n3"), digests["amd64"])
    assert digests["arm64"] != digests["amd64"]


def test_nodes_whose_platform_the_image_lacks_are_refused_by_name(
    cluster: SandboxPlan, tmp_path: Path
) -> None:
    from nd_oci import write_image_blobs, write_platform_index

    from tests.integration.nodes.conftest import busybox_layers

    root = tmp_path / "arm64-only"
    arm64 = write_image_blobs(root, busybox_layers("arm64-only"), architecture="arm64")
    write_platform_index(root, {"arm64": arm64}, ref="armonly")
    code, doc = invoke("push", str(root), "-i", cluster.inventory, "--env", "arm-only", "--json")
    assert code == 1, doc
    assert set(doc["nodes"]) == {"n1", "n2", "n3"}
    for node in doc["nodes"].values():  # the sandbox nodes are x86_64, as the agent's uname -m says
        assert node["status"] == "failed" and node["bytes_sent"] == 0, node
        assert "this node is linux/amd64; the image has only linux/arm64" in node["error"], node
