"""``envctl gc``: free node stores of what no environment's current or previous version needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from envctl.core.group import GroupResult
from envctl.core.node import NodeSpec
from envctl.core.transport import Connector, Transport
from envctl.services.cluster.fanout import on_nodes
from envctl.services.deliver.nodeclient import NodeClient


@dataclass(frozen=True)
class Freed:
    """What one node's gc removed."""

    removed_blobs: int = 0
    freed_bytes: int = 0
    removed_trees: tuple[str, ...] = ()
    in_use_trees: tuple[str, ...] = ()  # unreferenced, but a running process uses them: kept

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape of a node entry."""
        return {
            "removed_blobs": self.removed_blobs,
            "freed_bytes": self.freed_bytes,
            "removed_trees": list(self.removed_trees),
            "in_use_trees": list(self.in_use_trees),
        }


def gc(
    nodes: Sequence[NodeSpec], pool: Connector, max_age_hours: float = 24.0, parallel: int = 16
) -> GroupResult[Freed]:
    """Run the agent's gc on every node in parallel (unreferenced and older than the age)."""

    def one(node: NodeSpec, transport: Transport) -> Freed:
        doc = NodeClient(transport, node).call("gc", "--max-age", str(max_age_hours))
        return Freed(
            int(doc["removed_blobs"]),
            int(doc["freed_bytes"]),
            tuple(doc["removed_trees"]),
            tuple(doc.get("in_use_trees") or ()),
        )

    return on_nodes(nodes, pool, one, parallel=parallel)
