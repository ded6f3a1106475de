"""`envctl inventory check`: can every node be reached, authenticated and run a command?"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from envctl.core.group import GroupResult
from envctl.core.node import NodeSpec
from envctl.services.cluster.fanout import parallel_map


@dataclass(frozen=True)
class NodeReach:
    """One node answered: who we are there, its kernel, and how long the round trip took."""

    user: str
    kernel: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {"user": self.user, "kernel": self.kernel, "seconds": round(self.seconds, 3)}


def check_nodes(
    nodes: tuple[NodeSpec, ...], *, accept_new_host_keys: bool = False, parallel: int = 16
) -> GroupResult[NodeReach]:
    """Connect to every node (verifying host keys) and run ``id -un; uname -sr`` there."""
    from envctl.adapters.ssh_pool import SSHPool

    with SSHPool(accept_new_host_keys=accept_new_host_keys) as pool:

        def probe(node: NodeSpec) -> NodeReach:
            start = time.monotonic()
            with pool.connect(node) as transport:
                out = transport.run(["sh", "-c", "id -un; uname -sr"], timeout=30).stdout
            user, _, kernel = out.decode("utf-8", "replace").strip().partition("\n")
            return NodeReach(user, kernel, time.monotonic() - start)

        return parallel_map(nodes, probe, parallel=parallel)


@dataclass(frozen=True)
class NodeOutput:
    """What one command printed on one node, and how it ended."""

    exit_code: int
    stdout: str
    stderr: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {"exit_code": self.exit_code, "stdout": self.stdout, "stderr": self.stderr}


def run_everywhere(
    nodes: tuple[NodeSpec, ...],
    argv: tuple[str, ...],
    *,
    accept_new_host_keys: bool = False,
    parallel: int = 16,
    timeout: float = 600,
) -> GroupResult[NodeOutput]:
    """Run ``argv`` (quoted, never a raw shell string) on every node; a non-zero exit is data."""
    from envctl.adapters.ssh_pool import SSHPool

    with SSHPool(accept_new_host_keys=accept_new_host_keys) as pool:

        def one(node: NodeSpec) -> NodeOutput:
            with pool.connect(node) as transport:
                r = transport.run(list(argv), timeout=timeout, check=False)
            return NodeOutput(
                r.exit_code, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")
            )

        return parallel_map(nodes, one, parallel=parallel)
