"""``envctl gc``: free node stores of what no environment's current or previous version needs."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from envctl.core.delivery import Connect, NodeTarget
from envctl.errors import EnvctlError
from envctl.services.deliver.nodeclient import NodeClient


@dataclass(frozen=True)
class NodeGc:
    """What one node freed, or why it could not."""

    node: str
    removed_blobs: int = 0
    freed_bytes: int = 0
    removed_trees: tuple[str, ...] = ()
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape."""
        return {
            "removed_blobs": self.removed_blobs,
            "freed_bytes": self.freed_bytes,
            "removed_trees": list(self.removed_trees),
            "error": self.error,
        }


def gc(
    targets: Sequence[NodeTarget], connect: Connect, max_age_hours: float = 24.0, parallel: int = 16
) -> dict[str, NodeGc]:
    """Run the agent's gc on every node in parallel (unreferenced and older than the age)."""

    def one(t: NodeTarget) -> NodeGc:
        try:
            transport = connect(t)
        except EnvctlError as exc:
            return NodeGc(t.name, error=exc.message)
        try:
            doc = NodeClient(transport, t).call("gc", "--max-age", str(max_age_hours))
        except EnvctlError as exc:
            return NodeGc(t.name, error=exc.message)
        finally:
            transport.close()
        return NodeGc(t.name, int(doc["removed_blobs"]), int(doc["freed_bytes"]), tuple(doc["removed_trees"]))

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return {r.node: r for r in pool.map(one, targets)}
