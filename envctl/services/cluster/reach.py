"""`envctl inventory check` and `envctl exec`: reach every node, run one command on each."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from envctl.adapters.commands import describe
from envctl.core.group import GroupResult
from envctl.core.node import NodeSpec
from envctl.core.transport import Connector, Transport
from envctl.errors import RemoteError
from envctl.services.cluster.fanout import on_nodes

PROBE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class NodeReach:
    """One node answered: who we are there, its kernel, and how long the round trip took."""

    user: str
    kernel: str
    seconds: float

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape of a node entry."""
        return {"user": self.user, "kernel": self.kernel, "seconds": round(self.seconds, 3)}


def check_nodes(nodes: Sequence[NodeSpec], pool: Connector, *, parallel: int = 16) -> GroupResult[NodeReach]:
    """Connect to every node (verifying host keys) and run ``id -un; uname -sr`` there."""

    def probe(node: NodeSpec, transport: Transport) -> NodeReach:
        start = time.monotonic()
        out = transport.run(["sh", "-c", "id -un; uname -sr"], timeout=PROBE_TIMEOUT_S).stdout
        user, _, kernel = out.decode("utf-8", "replace").strip().partition("\n")
        return NodeReach(user, kernel, time.monotonic() - start)

    return on_nodes(nodes, pool, probe, parallel=parallel, timeout=_login(nodes) + PROBE_TIMEOUT_S)


def _login(nodes: Sequence[NodeSpec]) -> float:
    """Time a login may take (its own timeouts bound it; through a jump host it is two logins),
    so that a command's own timeout, with its clearer message, fires before the fan-out's."""
    return max((n.connect_timeout for n in nodes), default=0.0) * 2 + 1


@dataclass(frozen=True)
class NodeOutput:
    """What one command printed on one node, and how it ended."""

    exit_code: int
    stdout: str
    stderr: str

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape of a node entry."""
        return {"exit_code": self.exit_code, "stdout": self.stdout, "stderr": self.stderr}


class CommandFailed(RemoteError):
    """The command ran on the node and exited non-zero; ``output`` is what it printed."""

    def __init__(self, node: str, argv: Sequence[str], output: NodeOutput) -> None:
        super().__init__(node, f"`{describe(argv)}` exited with {output.exit_code}")
        self.output = output
        self.details = output.as_json()


def run_everywhere(
    nodes: Sequence[NodeSpec],
    argv: Sequence[str],
    pool: Connector,
    *,
    parallel: int = 16,
    timeout: float = 600,
) -> GroupResult[NodeOutput]:
    """Run ``argv`` (quoted, never a raw shell string) on every node within ``timeout`` seconds.

    A node where it exits non-zero is a failed entry (``CommandFailed``, with the output), as in
    fabric's GroupResult."""

    def one(node: NodeSpec, transport: Transport) -> NodeOutput:
        r = transport.run(list(argv), timeout=timeout, check=False)
        output = NodeOutput(
            r.exit_code, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")
        )
        if r.exit_code != 0:
            raise CommandFailed(node.name, argv, output)
        return output

    return on_nodes(nodes, pool, one, parallel=parallel, timeout=_login(nodes) + timeout)
