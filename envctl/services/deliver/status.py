"""``envctl status``: per node, what envctl last put there vs what is really active, in parallel."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from envctl.adapters import ledger
from envctl.core.delivery import Connect, NodeTarget
from envctl.errors import EnvctlError
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
class NodeStatus:
    """Every environment on one node, or why the node could not be asked."""

    node: str
    envs: dict[str, EnvStatus] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class StatusReport:
    """Status of every selected node."""

    nodes: dict[str, NodeStatus]

    @property
    def drifted(self) -> bool:
        """Any node unreachable or any environment not as envctl left it."""
        return any(n.error or any(e.drift for e in n.envs.values()) for n in self.nodes.values())

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape (schema ``envctl.status/1``)."""
        return {
            "schema": "envctl.status/1",
            "drift": self.drifted,
            "nodes": {
                name: {
                    "error": n.error,
                    "envs": {e: s.as_json() for e, s in sorted(n.envs.items())},
                }
                for name, n in sorted(self.nodes.items())
            },
        }


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
    targets: Sequence[NodeTarget],
    connect: Connect,
    env: str | None = None,
    parallel: int = 16,
    verify: bool = False,
) -> StatusReport:
    """Ask every node (in parallel) for its environments and compare with the ledger.

    ``verify`` also rehashes every stored blob of each current version (slow, thorough)."""
    wanted = ledger.desired(env)

    def one(t: NodeTarget) -> NodeStatus:
        try:
            transport = connect(t)
        except EnvctlError as exc:
            return NodeStatus(t.name, error=exc.message)
        try:
            args = ["--verify"] if verify else []
            doc = NodeClient(transport, t).call("state", *args, *([env] if env else []))
        except EnvctlError as exc:
            return NodeStatus(t.name, error=exc.message)
        finally:
            transport.close()
        names = set(doc["envs"]) | {e for e, nodes in wanted.items() if t.name in nodes}
        return NodeStatus(
            t.name,
            {
                e: _compare(e, wanted.get(e, {}).get(t.name, {}).get("digest"), doc["envs"].get(e))
                for e in sorted(names)
            },
        )

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return StatusReport({n.node: n for n in pool.map(one, targets)})
