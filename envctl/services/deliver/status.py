"""``envctl status``: per node, what envctl last put there vs what is really active, in parallel."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from envctl.adapters import ledger
from envctl.core.group import GroupResult
from envctl.core.node import NodeSpec
from envctl.core.transport import Connector, Transport
from envctl.services.cluster.fanout import on_nodes
from envctl.services.deliver.nodeclient import NodeClient


@dataclass(frozen=True)
class EnvStatus:
    """One environment on one node."""

    env: str
    desired: str | None  # last digest pushed (or rolled back to) here, per the local ledger
    current: str | None  # what the node's store records as active
    actual: str | None  # what is really active (None when it cannot be confirmed)
    previous: str | None
    runtime: str | None
    changed_at: float | None
    changed_by: str | None
    drift: str | None

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape."""
        return {
            "desired": self.desired,
            "current": self.current,
            "actual": self.actual,
            "previous": self.previous,
            "runtime": self.runtime,
            "changed_at": self.changed_at,
            "changed_by": self.changed_by,
            "drift": self.drift,
        }


@dataclass(frozen=True)
class NodeEnvs:
    """Every environment one node has, or that this machine's ledger put there."""

    envs: dict[str, EnvStatus] = field(default_factory=dict)

    @property
    def drifted(self) -> bool:
        """Any environment not as envctl left it."""
        return any(e.drift for e in self.envs.values())

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape of a node entry."""
        return {"envs": {e: s.as_json() for e, s in sorted(self.envs.items())}}


@dataclass(frozen=True)
class StatusReport:
    """Status of every selected node."""

    nodes: GroupResult[NodeEnvs]

    @property
    def drifted(self) -> bool:
        """Any node unreachable or any environment not as envctl left it."""
        return not self.nodes.ok or any(n.drifted for n in self.nodes.succeeded.values())

    @property
    def exit_code(self) -> int:
        """0 when every node answered and nothing drifted, else 1."""
        return 1 if self.drifted else 0

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape (``envctl.status/1``)."""
        return self.nodes.as_json("status", ok=not self.drifted, drift=self.drifted)


def _compare(env: str, desired: str | None, doc: dict[str, Any] | None) -> EnvStatus:
    doc = doc or {}
    current = (doc.get("current") or {}).get("digest")
    drift = doc.get("drift")
    if drift is None and desired is not None and desired != current:
        drift = f"envctl last put {desired[:19]} here, the node has {str(current)[:19]}"
    if drift is None and desired is None and current is not None:
        drift = None  # pushed from another machine: nothing in this ledger to compare with
    return EnvStatus(
        env=env,
        desired=desired,
        current=current,
        actual=doc.get("actual"),
        previous=(doc.get("previous") or {}).get("digest"),
        runtime=doc.get("runtime"),
        changed_at=(doc.get("current") or {}).get("when"),
        changed_by=(doc.get("current") or {}).get("by"),
        drift=drift,
    )


def status(
    nodes: Sequence[NodeSpec],
    pool: Connector,
    env: str | None = None,
    parallel: int = 16,
    verify: bool = False,
) -> StatusReport:
    """Ask every node (in parallel) for its environments and compare with the ledger.

    ``verify`` also rehashes every stored blob of each current version (slow, thorough)."""
    wanted = ledger.desired(env)

    def one(node: NodeSpec, transport: Transport) -> NodeEnvs:
        args = ["--verify"] if verify else []
        doc = NodeClient(transport, node).call("state", *args, *([env] if env else []))
        names = set(doc["envs"]) | {e for e, on in wanted.items() if node.name in on}
        return NodeEnvs(
            {
                e: _compare(e, wanted.get(e, {}).get(node.name, {}).get("digest"), doc["envs"].get(e))
                for e in sorted(names)
            }
        )

    return StatusReport(on_nodes(nodes, pool, one, parallel=parallel))
