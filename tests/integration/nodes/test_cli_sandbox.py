"""The commands end to end against the sandbox inventory: push, status, rollback, history."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from envctl.adapters.oci_layout import OciImage
from envctl.cli import cli
from envctl.core.sandbox import SandboxPlan

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))
from json_envelope import assert_envelope

pytestmark = pytest.mark.integration


def invoke(*args: str) -> tuple[int, dict]:
    """``envctl ARGS`` (with --json); every document is checked against the envelope and exit rule."""
    out = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    doc = json.loads(out.stdout)
    schema = "envctl.error/1" if "error_class" in doc else f"envctl.{args[0]}/1"
    assert_envelope(doc, out.exit_code, schema)
    return out.exit_code, doc


def test_push_status_rollback_history_json(cluster: SandboxPlan, make_image: Callable[..., OciImage]) -> None:
    inv = cluster.inventory
    v1, v2 = make_image("c1"), make_image("c2")
    code, doc = invoke("push", str(v1.root), "-i", inv, "--env", "cli", "--json")
    assert code == 0 and doc["outcome"] == "all" and doc["schema"] == "envctl.push/1" and doc["ok"]
    assert set(doc["nodes"]) == {"n1", "n2", "n3"}
    assert all(n["bytes_sent"] > 0 and n["status"] == "ok" for n in doc["nodes"].values())
    code, doc = invoke(
        "push", str(v2.root), "-i", inv, "--env", "cli", "--limit", "n[1-2]", "--atomic", "--json"
    )
    assert code == 0 and set(doc["nodes"]) == {"n1", "n2"}
    code, st = invoke("status", "cli", "-i", inv, "--json")
    assert code == 0 and st["drift"] is False and st["ok"] is True
    assert st["nodes"]["n1"]["envs"]["cli"]["actual"] == v2.manifest.digest
    assert st["nodes"]["n3"]["envs"]["cli"]["actual"] == v1.manifest.digest
    code, doc = invoke("rollback", "cli", "-i", inv, "--limit", "n1", "--json")
    assert code == 0 and doc["nodes"]["n1"]["digest"] == v1.manifest.digest
    code, hist = invoke("history", "--json")
    kinds = [(e["kind"], e["outcome"]) for e in hist["events"]]
    assert kinds == [("rollback", "ok"), ("push", "ok"), ("push", "ok")]
    assert hist["events"][0]["targets"] == ["n1"]
    code, doc = invoke("gc", "-i", inv, "--max-age", "0", "--json")
    assert code == 0 and set(doc["nodes"]) == {"n1", "n2", "n3"}
    assert doc["schema"] == "envctl.gc/1" and all(n["ok"] for n in doc["nodes"].values())
    code, st = invoke("status", "cli", "-i", inv, "--json")
    assert code == 0 and st["drift"] is False  # gc kept every current and previous version
    code, ran = invoke("exec", "-i", inv, "--json", "--", "sh", "-c", "echo hi")
    assert code == 0 and set(ran["nodes"]) == {"n1", "n2", "n3"}
    assert all(n["ok"] and n["stdout"] == "hi\n" for n in ran["nodes"].values())
    code, ran = invoke("exec", "-i", inv, "--limit", "n1", "--json", "--", "false")
    assert code == 1 and ran["ok"] is False and ran["nodes"]["n1"]["exit_code"] == 1

    # a node that cannot be reached: exit 1 and the node named in the JSON
    broken = Path(inv).with_name("broken.toml")
    broken.write_text(Path(inv).read_text().replace("port = 22", "port = 2", 1))
    code, doc = invoke("push", str(v1.root), "-i", str(broken), "--env", "cli", "--json")
    assert code == 1 and doc["outcome"] == "partial" and doc["ok"] is False
    assert [n for n, r in doc["nodes"].items() if r["status"] == "failed"] == ["n1"]
