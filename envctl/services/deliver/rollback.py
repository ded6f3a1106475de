"""``envctl rollback``: every node back to the one previous digest, each switched atomically.

Like a push, a rollback reads every node's epoch of the environment, claims it under a new
ballot and switches only while the node still promises it (``claims``). Its target is one
digest for all nodes (``rollback_target``): the version before the newest switch, on which the
nodes holding that switch must agree; a node already there stays (verified), so a rollback never
leaves the nodes on different digests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from envctl.adapters import ledger
from envctl.core.delivery import EVENT_OUTCOME, Delivered, DeliveryReport, NotDelivered
from envctl.core.generation import Ballot, Claim, next_ballot, rollback_target
from envctl.core.group import GroupResult
from envctl.core.node import NodeSpec
from envctl.core.transport import Connector, Transport
from envctl.errors import EnvctlError
from envctl.services.cluster.fanout import Fanout
from envctl.services.deliver import claims
from envctl.services.deliver.nodeclient import NodeClient


def rollback(
    env: str,
    nodes: Sequence[NodeSpec],
    pool: Connector,
    parallel: int = 8,
    by: str = "unknown",
) -> DeliveryReport:
    """Switch ``env`` back to its previous digest on every node; records the outcome."""

    def client(node: NodeSpec, transport: Transport) -> NodeClient:
        return NodeClient(transport, node, by=by)

    digest: str | None = None
    ballot: Ballot | None = None
    lost: Claim | None = None
    with Fanout(nodes, pool, parallel=parallel) as fan:
        reached = fan.run(lambda node, transport: claims.read(client(node, transport), env))
        results: dict[str, Delivered | EnvctlError] = {
            name: NotDelivered.of(error, None) for name, error in reached.failed.items()
        }
        try:
            digest = rollback_target(reached.succeeded)
        except ValueError as exc:
            hint = "push the version you want instead" if "disagree" in str(exc) else None
            results.update(
                {name: NotDelivered(f"not rolled back: {exc}", hint) for name in reached.succeeded}
            )
        if digest is not None:
            ballot = next_ballot(reached.succeeded.values(), claims.new_token())
            members = [n.name for n in nodes]
            taken = claims.claim_all(fan, client, env, ballot, "rollback", digest, members, reached.succeeded)
            results.update({name: NotDelivered.of(e, digest) for name, e in taken.failed.items()})
            lost = taken.lost_to
            if lost is not None:
                reason = f"not rolled back: {lost.describe()} took the env over"
                for name in set(reached.succeeded) - set(taken.failed):
                    results[name] = NotDelivered(reason, status="skipped", digest=digest)
            else:
                switched = fan.run(_switch_back(client, env, digest, ballot), only=taken.granted)
                for name, value in switched.items():
                    if isinstance(value, EnvctlError):
                        lost = _newest(lost, claims.holder(value))
                        value = NotDelivered.of(value, digest)
                    results[name] = value
    nodes_map: GroupResult[Delivered] = GroupResult({n.name: results[n.name] for n in nodes})
    report = DeliveryReport("rollback", env, digest, nodes_map, ballot=ballot, lost_to=lost)
    details = report.as_json()
    ledger.record("rollback", digest or "", sorted(nodes_map), EVENT_OUTCOME[report.outcome], details)
    return report


def _switch_back(
    client: Callable[[NodeSpec, Transport], NodeClient], env: str, digest: str, ballot: Ballot
) -> Callable[[NodeSpec, Transport], Delivered]:
    """The per-node step: the agent's ``rollback ENV --to DIGEST`` under ``ballot``."""
    under = [env, "--to", digest, *claims.ballot_args(ballot)]

    def one(node: NodeSpec, transport: Transport) -> Delivered:
        doc = client(node, transport).call("rollback", *under)
        old = (doc.get("old") or {}).get("current") or {}
        repaired = doc.get("repaired")
        return Delivered(
            "ok" if doc["changed"] else "unchanged",
            doc["state"]["current"]["digest"],
            previous=old.get("digest"),
            generation=ballot.generation,
            repaired=str(repaired) if repaired else None,
        )

    return one


def _newest(a: Claim | None, b: Claim | None) -> Claim | None:
    return b if a is None or (b is not None and b.ballot > a.ballot) else a
