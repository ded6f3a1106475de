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
