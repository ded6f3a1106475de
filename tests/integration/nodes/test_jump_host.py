"""Nodes behind one jump host, as on a cluster behind a bastion: every multi-node command logs in
to the bastion exactly once, however many nodes it serves behind it (counted in its sshd log)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from nd_jump import JumpCluster

from envctl.adapters.oci_layout import OciImage
from envctl.cli import cli

pytestmark = pytest.mark.integration
BEHIND = "n[2-5]"


def invoke(*args: str) -> tuple[int, dict]:
    out = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert out.stdout.strip(), f"{args[0]}: exit {out.exit_code}, no JSON: {out.output[-2000:]}"
    return out.exit_code, json.loads(out.stdout)


def once(cluster: JumpCluster, *args: str, argv: tuple[str, ...] = ()) -> dict:
    """Run one command on n2-n5; assert it succeeded and logged in to the bastion exactly once."""
    before = cluster.logins()
    code, doc = invoke(*args, "-i", cluster.inventory, "--limit", BEHIND, "--json", *argv)
    assert code == 0 and doc["ok"] is True, doc
    assert set(doc["nodes"]) == {"n2", "n3", "n4", "n5"}
    assert cluster.logins() - before == 1, f"{args[0]}: {cluster.logins() - before} logins to the bastion"
    return doc


def test_every_command_logs_in_to_the_jump_host_once(
    jump_cluster: JumpCluster, make_image: Callable[..., OciImage]
) -> None:
    v1, v2 = make_image("j1"), make_image("j2")
    before = jump_cluster.logins()
    code, _ = invoke("inventory", "check", "-i", jump_cluster.inventory, "--limit", "n1", "--json")
    assert code == 0 and jump_cluster.logins() - before == 1  # the count sees a login

    pushed = once(jump_cluster, "push", str(v1.root), "--env", "jump", "--parallel", "4")
    assert all(n["status"] == "ok" and n["bytes_sent"] > 0 for n in pushed["nodes"].values())
    once(jump_cluster, "push", str(v2.root), "--env", "jump", "--atomic")
    status = once(jump_cluster, "status", "jump")
    assert {n["envs"]["jump"]["actual"] for n in status["nodes"].values()} == {v2.manifest.digest}
    back = once(jump_cluster, "rollback", "jump")
    assert back["digest"] == v1.manifest.digest
    once(jump_cluster, "gc", "--max-age", "0")
    check = once(jump_cluster, "inventory", "check")
    assert {n["user"] for n in check["nodes"].values()} == {"root"}

    script = 'echo "$SSH_CONNECTION"; cat /opt/envctl/envs/jump/app/envmod.py'
    ran = once(jump_cluster, "exec", argv=("--", "sh", "-c", script))
    bastion = jump_cluster.bastion.address
    for name, node in ran["nodes"].items():
        seen, module = node["stdout"].split("\n", 1)
        # each node saw its connection come from the bastion, not from this machine
        assert seen.split()[0] == bastion and seen.split()[2] != bastion, (name, seen)
        assert module == "VERSION = 'j1'\n"


def test_an_unreachable_jump_host_fails_every_node_behind_it_naming_both(
    jump_cluster: JumpCluster, tmp_path: Path
) -> None:
    text = Path(jump_cluster.inventory).read_text()
    bastion = jump_cluster.bastion.address
    dead = tmp_path / "dead-bastion.toml"
    dead.write_text(text.replace(f'host = "{bastion}"', 'host = "10.251.9.158"', 1))
    out = CliRunner().invoke(
        cli, ["status", "-i", str(dead), "--limit", BEHIND, "--json"], catch_exceptions=False
    )
    doc = json.loads(out.stdout)
    assert out.exit_code == 1 and doc["ok"] is False and doc["outcome"] == "none"
    for name, node in doc["nodes"].items():
        assert node["ok"] is False
        assert node["error"].startswith(f"{name}: through jump host n1: "), node["error"]
