"""NodeClient edge cases: no python3 on the node, agent errors, agent installation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from envctl.core.node import NodeSpec
from envctl.core.transport import CommandResult
from envctl.errors import AgentError, RemoteError
from envctl.services.deliver.nodeclient import NodeClient


class NoPython:
    node = "n9"

    def run(self, argv: Sequence[str], **_: Any) -> CommandResult:
        return CommandResult(tuple(argv), 127, b"", b"sh: 1: python3: not found\n")

    def upload(self, argv: Sequence[str], source: Any, **_: Any) -> CommandResult:
        return self.run(argv)

    def close(self) -> None:
        pass


def test_missing_python_is_a_clear_error() -> None:
    client = NodeClient(NoPython(), NodeSpec("n9", "localhost"))
    with pytest.raises(RemoteError, match="n9: python3 not found") as err:
        client.have([])
    assert "python3" in str(err.value.hint)


def test_agent_is_installed_once_then_errors_carry_their_kind(tmp_path: Path, nd_transport: Any) -> None:
    client = NodeClient(nd_transport, NodeSpec("n1", "localhost", store=str(tmp_path / "s")))
    assert client.have([]) == (set(), {})
    assert len(list((tmp_path / "s" / "agent").iterdir())) == 1
    installs = [c for c in nd_transport.calls if "-c" in c]
    client.have([])
    assert [c for c in nd_transport.calls if "-c" in c] == installs  # not reinstalled
    with pytest.raises(AgentError) as err:
        client.call("prepare", "demo", "sha256:" + "0" * 64)
    assert err.value.kind == "missing" and "missing or corrupt" in err.value.message


def test_have_sends_the_digests_of_a_huge_image_on_stdin(tmp_path: Path, nd_transport: Any) -> None:
    # issue 9: 10,002 layers in `have`'s argv overflowed the remote command line (empty reason)
    client = NodeClient(nd_transport, NodeSpec("n1", "localhost", store=str(tmp_path / "s")))
    digests = [f"sha256:{i:064x}" for i in range(10_003)]
    assert client.have(digests) == (set(), {})
    have = [c for c in nd_transport.calls if "have" in c][-1]
    assert sum(len(a) for a in have) < 2000


def test_the_inventory_unpack_limits_reach_the_agent(tmp_path: Path, nd_transport: Any) -> None:
    spec = NodeSpec("n1", "localhost", store=str(tmp_path / "s"), unpack_max_bytes=5, unpack_max_depth=3)
    NodeClient(nd_transport, spec).have([])
    argv = list(nd_transport.calls[-1])
    assert argv[argv.index("--max-bytes") + 1] == "5" and argv[argv.index("--max-depth") + 1] == "3"
    assert "--max-entries" not in argv  # unset: the agent's default
