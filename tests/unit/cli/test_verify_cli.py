"""``envctl verify``: each node is dialled once for its GPU facts and its check together; a node
that cannot be reached is tried once and reported once, with its one-line reason."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from envctl.cli import cli
from envctl.core.node import NodeSpec
from envctl.errors import TransportError

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures"))
sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
from json_envelope import assert_envelope
from nd_local import LocalPool, LocalTransport


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVCTL_STATE_DIR", str(tmp_path / "st"))


def inventory(tmp_path: Path, *names: str) -> Path:
    """Prefix nodes on this machine, each with its own store and prefix root under ``tmp_path``."""
    text = '[defaults]\nssh_config = ""\n'
    for name in names:
        text += (
            f'[nodes.{name}]\nhost = "localhost"\nruntime = "prefix"\n'
            f'store = "{tmp_path / name / "store"}"\nprefix_root = "{tmp_path / name / "envs"}"\n'
            f'python = "{sys.executable}"\n'
        )
    path = tmp_path / "inventory.toml"
    path.write_text(text)
    return path


def test_an_unreachable_node_is_dialled_once_and_reported_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: dict[str, list[LocalTransport]] = {}

    def dial(node: NodeSpec) -> LocalTransport:
        if node.name == "ghost":
            raise TransportError("ghost", "connection refused", hint="is sshd running there?")
        opened.setdefault(node.name, []).append(LocalTransport(node.name))
        return opened[node.name][-1]

    pool = LocalPool(dial)

    @contextlib.contextmanager
    def ssh_pool(_accept: bool) -> Iterator[LocalPool]:
        yield pool

    monkeypatch.setattr("envctl.cli.verify.ssh_pool", ssh_pool)
    out = CliRunner().invoke(cli, ["verify", "demo", "-i", str(inventory(tmp_path, "n1", "ghost")), "--json"])
    doc = json.loads(out.stdout)
    assert_envelope(doc, out.exit_code, "envctl.verify/1")

    # one connection attempt per node: the facts (for --gpus) and the check share it
    assert sorted(pool.connects) == ["ghost", "n1"]
    (n1,) = opened["n1"]
    assert {c for argv in n1.calls for c in ("facts", "smoke") if c in argv} == {"facts", "smoke"}

    assert out.exit_code == 1 and doc["outcome"] == "none" and doc["failed"] == ["ghost", "n1"]
    ghost = doc["nodes"]["ghost"]
    assert ghost["error"] == "verify: ghost: connection refused" and ghost["hint"] == "is sshd running there?"
    assert doc["nodes"]["n1"]["error"] == "verify: n1: demo is not active on this node: nothing to verify"
