"""``envctl status``: per node, what it should run vs what is really active, in parallel.

What a node should run (``desired``) comes from the nodes' own records, not from the order
operations finished here: the newest switch (by generation, ``envctl.core.generation``) whose
push or rollback included the node. Member lists are read (a second, small round) only from a
node holding a switch that some other node lacks. Records from before generations fall back
to this machine's ledger, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from envctl.adapters import ledger
from envctl.core.generation import NO_BALLOT, Ballot, Desired, Switched, desired, newer_ballots
from envctl.core.group import GroupResult
from envctl.core.node import NodeSpec
from envctl.core.transport import Connector, Transport
from envctl.errors import EnvctlError, RemoteError
from envctl.services.cluster.fanout import Fanout
from envctl.services.deliver import claims
from envctl.services.deliver.nodeclient import NodeClient


@dataclass(frozen=True)
class EnvStatus:
    """One environment on one node."""

    env: str
    desired: str | None  # the newest switch that included this node (see the module docstring)
    current: str | None  # what the node's store records as active
    actual: str | None  # what is really active (None when it cannot be confirmed)
    previous: str | None
    runtime: str | None
    changed_at: float | None
    changed_by: str | None
    drift: str | None
    generation: int | None = None  # of the current record (None: from before generations)

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
            "generation": self.generation,
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


def _compare(
    env: str, node: str, want: Desired | None, legacy: str | None, doc: dict[str, Any] | None
) -> EnvStatus:
    """One environment of one node: its record against what it should run.

    ``want`` is the newest switch that included the node; ``legacy`` the digest this machine's
    ledger last put there, used only when the node's record predates generations."""
    doc = doc or {}
    record = doc.get("current") or {}
    current = record.get("digest")
    own = claims.parse_switched(node, record) if record else None
    drift = doc.get("drift")
    desired_digest = want.digest if want else None
    if drift is None and want is not None and (own is None or want.ballot != own.ballot):
        drift = (
            f"missed the switch to {want.digest[:19]} (generation {want.ballot.generation}) it was part of;"
            f" the node has {str(current)[:19]}"
        )
    elif own is None or own.ballot == NO_BALLOT:
        desired_digest = legacy or desired_digest
        if drift is None and legacy is not None and legacy != current:
            drift = f"envctl last put {legacy[:19]} here, the node has {str(current)[:19]}"
    return EnvStatus(
        env=env,
        desired=desired_digest,
        current=current,
        actual=doc.get("actual"),
        previous=(doc.get("previous") or {}).get("digest"),
        runtime=doc.get("runtime"),
        changed_at=record.get("when"),
        changed_by=record.get("by"),
        drift=drift,
        generation=own.ballot.generation if own and own.ballot != NO_BALLOT else None,
    )


def status(
    nodes: Sequence[NodeSpec],
    pool: Connector,
    env: str | None = None,
    parallel: int = 16,
    verify: bool = False,
) -> StatusReport:
    """Ask every node (in parallel) for its environments and compare each with what it should run.

    ``verify`` also rehashes every stored blob (and prefix file) of each current version (slow)."""
    wanted = ledger.desired(env)

    def ask(node: NodeSpec, transport: Transport) -> dict[str, Any]:
        args = ["--verify"] if verify else []
        envs = NodeClient(transport, node).call("state", *args, *([env] if env else []))["envs"]
        if not isinstance(envs, dict):
            raise RemoteError(node.name, "the envctl agent returned a malformed state")
        out = {}
        for name, doc in envs.items():
            if isinstance(doc, dict):
                _switched(node.name, doc)  # a malformed record fails this node, not the command
                out[name] = doc
        return out

    with Fanout(nodes, pool, parallel=parallel) as fan:
        answers = fan.run(ask)
        docs = answers.succeeded
        records = {
            e: {n: _switched(n, docs[n].get(e)) for n in docs}
            for e in sorted({e for d in docs.values() for e in d})
        }
        members = _members(fan, {e: newer_ballots(r) for e, r in records.items()})
    wants = {e: desired(r, members.get(e, {})) for e, r in records.items()}

    def entry(name: str) -> NodeEnvs | EnvctlError:
        answer = answers[name]
        if isinstance(answer, EnvctlError):
            return answer
        mine = {e for e, w in wants.items() if w.get(name) is not None}
        names = set(answer) | mine | {e for e, on in wanted.items() if name in on}
        return NodeEnvs(
            {
                e: _compare(
                    e,
                    name,
                    wants.get(e, {}).get(name),
                    wanted.get(e, {}).get(name, {}).get("digest"),
                    answer.get(e),
                )
                for e in sorted(names)
            }
        )

    return StatusReport(GroupResult({n.name: entry(n.name) for n in nodes}))


def _switched(node: str, doc: dict[str, Any] | None) -> Switched | None:
    current = (doc or {}).get("current")
    return claims.parse_switched(node, current) if current else None


def _members(
    fan: Fanout, needed: dict[str, dict[Ballot, str]]
) -> dict[str, dict[Ballot, frozenset[str] | None]]:
    """env -> ballot -> the nodes that operation was for, read from one node holding each switch."""
    by_node: dict[str, list[str]] = {}
    for e, ballots in needed.items():
        for holder in ballots.values():
            by_node.setdefault(holder, []).append(e)
    if not by_node:
        return {}

    def fetch(node: NodeSpec, transport: Transport) -> dict[str, Any]:
        doc = NodeClient(transport, node).call("state", "--members", *sorted(set(by_node[node.name])))
        return doc["envs"] if isinstance(doc.get("envs"), dict) else {}

    out: dict[str, dict[Ballot, frozenset[str] | None]] = {}
    for holder, answer in fan.run(fetch, only=by_node).items():
        envs = answer if isinstance(answer, dict) else {}
        for e in set(by_node[holder]):
            got = envs.get(e)
            got = got if isinstance(got, dict) else {}
            listed = got.get("members")
            try:
                held = _switched(holder, got)
            except EnvctlError:
                held = None
            for ballot, who in needed[e].items():
                if who == holder:  # a list only if the holder still has that switch
                    known = isinstance(listed, list) and held is not None and held.ballot == ballot
                    names = frozenset(str(m) for m in listed) if isinstance(listed, list) else None
                    out.setdefault(e, {})[ballot] = names if known else None
    return out
