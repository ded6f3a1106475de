"""``push --verify`` and ``envctl verify`` on real sandbox nodes, with envctl-built images.

The check really runs: a package broken on purpose fails it by name on every node that runs it,
the node keeps running it (exit 1, the rollback command said), ``--atomic`` switches every node
back, the ledger and ``history`` hold the per-node results, an unreachable node is named, and a
docker node runs the check in a container of its own engine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from json_envelope import assert_envelope

from envctl.cli import cli
from envctl.core.sandbox import SandboxPlan
from tests.integration.verify.conftest import GHOST, Images

pytestmark = pytest.mark.integration

PACKAGES = 4  # numpy, nvidia-cudnn-cu12, six, torch (the broken image adds brokenpkg)


def run(*args: str, schema: str | None = None) -> tuple[int, dict[str, Any]]:
    """``envctl ARGS --json`` in-process; the document is checked against the envelope rule."""
    out = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
    doc = json.loads(out.stdout)
    assert_envelope(doc, out.exit_code, schema or f"envctl.{args[0]}/1")
    return out.exit_code, doc


def text(*args: str) -> tuple[int, str]:
    """``envctl ARGS`` in-process as a person sees it (tables on stdout)."""
    out = CliRunner().invoke(cli, list(args), catch_exceptions=False, env={"COLUMNS": "250"})
    return out.exit_code, out.stdout


def current(inventory: str, env: str, limit: str = "n[1-3]") -> dict[str, str | None]:
    """Each node's current digest of ``env``, as the nodes' own records say (envctl status)."""
    _, doc = run("status", "-i", inventory, env, "--limit", limit)
    out = {}
    for name, node in doc["nodes"].items():
        entry = node["envs"].get(env) or {}
        assert entry.get("drift") is None, entry  # running the check left the tree as unpacked
        out[name] = entry.get("current")
    return out


def test_push_verify_passes_on_every_node_and_is_in_the_ledger(
    vf_cluster: SandboxPlan, vf_images: Images
) -> None:
    inv = vf_cluster.inventory
    code, doc = run("push", str(vf_images.good), "-i", inv, "--env", "vfgood", "--verify")
    assert code == 0 and doc["ok"] and doc["outcome"] == "all", doc
    assert doc["verify"] == {"outcome": "all", "passed": ["n1", "n2", "n3"], "failed": [], "not_run": []}
    assert "verify" in doc["timings"]
    for node in doc["nodes"].values():
        check = node["verify"]
        assert check["ok"] and check["passed"] and check["failed"] == []
        assert check["digest"] == doc["digest"] and check["runtime"] == "prefix"
        assert check["packages"] == PACKAGES and check["python"].startswith("3.11.")
        assert check["kernels"] == {} and check["seconds"] > 0  # no GPU in the sandbox
    assert set(current(inv, "vfgood").values()) == {doc["digest"]}

    code, again = run("verify", "vfgood", "-i", inv)
    assert code == 0 and again["passed"] == ["n1", "n2", "n3"] and again["failed"] == []
    assert {n["digest"] for n in again["nodes"].values()} == {doc["digest"]}

    _, hist = run("history", "--limit", "2")
    verify_event, push_event = hist["events"]
    assert (verify_event["kind"], verify_event["subject"], verify_event["outcome"]) == (
        "verify",
        "vfgood",
        "ok",
    )
    assert verify_event["details"]["nodes"]["n2"]["packages"] == PACKAGES
    assert push_event["kind"] == "push" and push_event["outcome"] == "ok"
    assert push_event["details"]["verify"]["passed"] == ["n1", "n2", "n3"]
    assert push_event["details"]["nodes"]["n3"]["verify"]["passed"] is True
    code, table = text("history", "--limit", "2")
    assert code == 0 and table.count("3/3 passed") == 2


def test_a_broken_package_fails_by_name_and_the_node_keeps_it_with_a_way_back(
    vf_cluster: SandboxPlan, vf_images: Images
) -> None:
    inv = vf_cluster.inventory
    code, good = run("push", str(vf_images.good), "-i", inv, "--env", "vfbad", "--limit", "n1,n2")
    assert code == 0
    code, doc = run(
        "push", str(vf_images.broken), "-i", inv, "--env", "vfbad", "--limit", "n1,n2", "--verify"
    )
    assert code == 1 and not doc["ok"] and doc["outcome"] == "none"
    assert doc["verify"]["failed"] == ["n1", "n2"] and doc["verify"]["passed"] == []
    for name, node in doc["nodes"].items():
        assert node["status"] == "ok" and not node["ok"]  # switched: it runs the broken image now
        assert (
            node["error"]
            == "verify failed: brokenpkg (brokenpkg: ImportError: broken on purpose by the test)"
        )
        assert f"envctl rollback vfbad -i INVENTORY --limit {name}" in node["hint"]
        assert node["verify"]["failed"] == [
            "brokenpkg (brokenpkg: ImportError: broken on purpose by the test)"
        ]
        assert node["verify"]["packages"] == PACKAGES + 1
    assert current(inv, "vfbad", "n1,n2") == {"n1": doc["digest"], "n2": doc["digest"]}
    _, hist = run("history", "--kind", "push", "--limit", "1")
    assert hist["events"][0]["outcome"] == "failed"
    assert hist["events"][0]["details"]["verify"]["failed"] == ["n1", "n2"]

    # as a person sees it: loud, per node, with the command that undoes it
    code, out = text("verify", "vfbad", "-i", inv, "--limit", "n2")
    assert code == 1 and "FAILED" in out and "brokenpkg" in out
    assert f"VERIFY FAILED on n2: roll it back with: envctl rollback vfbad -i {inv} --limit n2" in out
    code, out = text("push", str(vf_images.broken), "-i", inv, "--env", "vfbad", "--limit", "n1", "--verify")
    assert code == 1 and "VERIFY FAILED on n1: verify failed: brokenpkg" in out
    assert f"envctl rollback vfbad -i {inv} --limit n1" in out

    code, _ = run("rollback", "vfbad", "-i", inv, "--limit", "n1,n2", schema="envctl.rollback/1")
    assert code == 0
    assert current(inv, "vfbad", "n1,n2") == {"n1": good["digest"], "n2": good["digest"]}
    code, doc = run("verify", "vfbad", "-i", inv, "--limit", "n1,n2")
    assert code == 0 and doc["passed"] == ["n1", "n2"]


def test_atomic_verify_switches_every_node_back(vf_cluster: SandboxPlan, vf_images: Images) -> None:
    inv = vf_cluster.inventory
    code, good = run("push", str(vf_images.good), "-i", inv, "--env", "vfatomic")
    assert code == 0
    code, doc = run("push", str(vf_images.broken), "-i", inv, "--env", "vfatomic", "--verify", "--atomic")
    assert code == 1 and doc["outcome"] == "none" and doc["verify"]["failed"] == ["n1", "n2", "n3"]
    for node in doc["nodes"].values():
        assert node["status"] == "failed" and not node["ok"]
        assert (
            node["error"].startswith("verify failed: brokenpkg")
            and "switched back (--atomic)" in node["error"]
        )
    assert current(inv, "vfatomic") == {n: good["digest"] for n in ("n1", "n2", "n3")}
    code, doc = run("verify", "vfatomic", "-i", inv)
    assert code == 0 and doc["passed"] == ["n1", "n2", "n3"]


def test_verify_names_an_unreachable_node_and_checks_the_others(
    vf_cluster: SandboxPlan, vf_images: Images, tmp_path: Path
) -> None:
    inv = vf_cluster.inventory
    assert run("push", str(vf_images.good), "-i", inv, "--env", "vfghost", "--limit", "n3")[0] == 0
    text_inv = Path(inv).read_text()
    ghost = text_inv.split("[nodes.n3]")[1].replace('"10.252.2.4"', f'"{GHOST}"')
    with_ghost = tmp_path / "inventory.toml"
    with_ghost.write_text(text_inv.replace('"n[1-3]"', '"n[1-3]", "ghost"') + "\n[nodes.ghost]" + ghost)
    code, doc = run("verify", "vfghost", "-i", str(with_ghost), "--limit", "n3,ghost")
    assert code == 1 and doc["outcome"] == "partial"
    assert doc["passed"] == ["n3"] and doc["failed"] == ["ghost"]
    entry = doc["nodes"]["ghost"]
    assert (
        entry["passed"] is False and entry["error"].startswith("verify: ghost:") and entry["digest"] is None
    )
    code, doc = run("verify", "vfghost", "-i", inv, "--limit", "n1")
    assert (
        code == 1
        and doc["nodes"]["n1"]["error"] == "verify: n1: vfghost is not active on this node: nothing to verify"
    )


def test_a_docker_node_runs_the_check_in_its_engine(vfd_cluster: SandboxPlan, vf_images: Images) -> None:
    inv = vfd_cluster.inventory
    code, doc = run("push", str(vf_images.good), "-i", inv, "--env", "vfdock", "--verify")
    assert code == 0 and doc["verify"]["passed"] == ["n1"], doc
    check = doc["nodes"]["n1"]["verify"]
    assert check["runtime"] == "docker" and check["packages"] == PACKAGES
    code, doc = run("push", str(vf_images.broken), "-i", inv, "--env", "vfdock", "--verify")
    assert code == 1 and doc["nodes"]["n1"]["verify"]["failed"][0].startswith(
        "brokenpkg (brokenpkg: ImportError"
    )
    assert doc["nodes"]["n1"]["verify"]["runtime"] == "docker"
