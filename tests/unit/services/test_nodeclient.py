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


class SudoRefuses:
    """A node whose sudo rule names another agent (sudo's own refusal), recording each argv."""

    node = "n4"

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def run(self, argv: Sequence[str], **_: Any) -> CommandResult:
        self.calls.append(tuple(argv))
        return CommandResult(tuple(argv), 1, b"", b"sudo: a password is required\n")

    def upload(self, argv: Sequence[str], source: Any, **_: Any) -> CommandResult:
        return self.run(argv)

    def close(self) -> None:
        pass


def test_with_become_the_agent_runs_in_the_shape_the_bootstrap_rule_allows() -> None:
    transport = SudoRefuses()
    spec = NodeSpec("n4", "h", user="envctl", become=True)
    client = NodeClient(transport, spec)
    with pytest.raises(RemoteError, match="n4: sudo -n refused to run the envctl agent") as err:
        client.call("state")
    assert "envctl bootstrap" in str(err.value.hint)  # the narrow rule names another agent
    argv = transport.calls[0]
    agent = f"{spec.store}/agent/{client._agent.rsplit('/', 1)[1]}"
    assert argv[:11] == (
        "sudo",
        "-n",
        "--",
        "python3",
        "-S",
        "-E",
        agent,
        "--store",
        spec.store,
        "--prefix-root",
        spec.prefix_root,
    )
    assert "-c" not in argv  # the agent itself first; an installer only when it is missing


class Refusing(NoPython):
    """A node whose answers are scripted: (exit code, stderr) for each command."""

    def __init__(self, code: int, stderr: bytes) -> None:
        self.code, self.stderr, self.calls = code, stderr, []

    def run(self, argv: Sequence[str], **_: Any) -> CommandResult:
        self.calls.append(list(argv))
        if "-c" not in argv and self.code == 77:  # the agent is not there yet: installed first
            return CommandResult(tuple(argv), 2, b"", b"python3: can't open file '/x': [Errno 2]\n")
        return CommandResult(tuple(argv), self.code, b"", self.stderr)


def test_become_runs_the_agent_through_sudo_n_and_a_refusal_names_the_rule() -> None:
    node = Refusing(1, b"sudo: a password is required\n")
    spec = NodeSpec("n1", "h", user="deploy", become=True, become_user="svc")
    with pytest.raises(RemoteError, match="sudo -n refused") as err:
        NodeClient(node, spec).have([])
    assert node.calls[0][:5] == ["sudo", "-n", "-u", "svc", "--"]
    assert "deploy ALL=(root) NOPASSWD: /usr/bin/python3 -S -E *" in str(err.value.hint)


def test_a_user_who_may_not_write_the_store_gets_both_ways_out() -> None:
    node = Refusing(77, b"/var/lib/envctl/agent: Permission denied\n")
    with pytest.raises(RemoteError, match="/var/lib/envctl/agent: Permission denied") as err:
        NodeClient(node, NodeSpec("n1", "h", user="deploy")).have([])
    assert node.calls[0][0] == "python3"  # no sudo without become
    hint = str(err.value.hint)
    assert "become = true" in hint and "/var/lib/envctl" in hint and "/opt/envctl/envs" in hint
