"""``envctl rollback``: every node back to its previous digest, each switched atomically."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from envctl.adapters import ledger
from envctl.core.delivery import Connect, DeliveryReport, NodeResult, NodeTarget
from envctl.errors import EnvctlError
from envctl.services.deliver.nodeclient import NodeClient


def rollback(
    env: str,
    targets: Sequence[NodeTarget],
    connect: Connect,
    parallel: int = 8,
    by: str = "unknown",
) -> DeliveryReport:
    """Switch ``env`` back to its previous digest on every node; records the outcome."""

    def one(t: NodeTarget) -> NodeResult:
        try:
            transport = connect(t)
        except EnvctlError as exc:
            return NodeResult(t.name, "failed", reason=exc.message)
        try:
            doc = NodeClient(transport, t, by=by).call("rollback", env)
        except EnvctlError as exc:
            return NodeResult(t.name, "failed", reason=exc.message)
        finally:
            transport.close()
        old = (doc.get("old") or {}).get("current") or {}
        return NodeResult(t.name, "ok", digest=doc["state"]["current"]["digest"], previous=old.get("digest"))

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        results = {r.node: r for r in pool.map(one, targets)}
    digests = {r.digest for r in results.values() if r.digest}
    report = DeliveryReport("rollback", env, digests.pop() if len(digests) == 1 else None, results)
    ledger.record("rollback", report.digest or "", sorted(results), report.outcome, report.as_json())
    return report
