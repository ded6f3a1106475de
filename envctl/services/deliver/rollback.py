"""``envctl rollback``: every node back to its previous digest, each switched atomically."""

from __future__ import annotations

from collections.abc import Sequence

from envctl.adapters import ledger
from envctl.core.delivery import EVENT_OUTCOME, Delivered, DeliveryReport, NotDelivered
from envctl.core.group import GroupResult
from envctl.core.node import NodeSpec
from envctl.core.transport import Connector, Transport
from envctl.errors import EnvctlError
from envctl.services.cluster.fanout import on_nodes
from envctl.services.deliver.nodeclient import NodeClient


def rollback(
    env: str,
    nodes: Sequence[NodeSpec],
    pool: Connector,
    parallel: int = 8,
    by: str = "unknown",
) -> DeliveryReport:
    """Switch ``env`` back to its previous digest on every node; records the outcome."""

    def one(node: NodeSpec, transport: Transport) -> Delivered:
        doc = NodeClient(transport, node, by=by).call("rollback", env)
        old = (doc.get("old") or {}).get("current") or {}
        return Delivered("ok", doc["state"]["current"]["digest"], previous=old.get("digest"))

    results = on_nodes(nodes, pool, one, parallel=parallel)
    digests = {r.digest for r in results.succeeded.values() if r.digest}
    digest = digests.pop() if len(digests) == 1 else None
    nodes_map: GroupResult[Delivered] = GroupResult(
        {
            name: NotDelivered.of(value, digest) if isinstance(value, EnvctlError) else value
            for name, value in results.items()
        }
    )
    report = DeliveryReport("rollback", env, digest, nodes_map)
    details = report.as_json()
    ledger.record("rollback", digest or "", sorted(nodes_map), EVENT_OUTCOME[report.outcome], details)
    return report
