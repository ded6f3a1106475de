"""Generations of an environment across a cluster: which operation may change it, and what each
node should run. Pure.

Every push and rollback of ENV runs under a ``Ballot`` ``(generation, token)`` that it claims on
every node first (the protocol is in docs/nodes.md and ``envctl.node.epochs``): one more than
the highest generation any node reported, so the newest operation outranks every one before it,
on every node alike; a node refuses a claim lower than one it already promised, and changes ENV
only under the ballot it promises now. Two operations at once therefore cannot both switch all
their nodes: the lower one is *superseded* wherever the higher one claimed first, and reports
the ``Claim`` that beat it.

The same records say what a node *should* run (``desired``): the digest of the newest switch
whose operation included that node. A node that missed a newer operation it was part of has
drifted; a node that was never part of it has not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class Ballot:
    """What orders operations on one environment: the generation, then the token (a sender's
    clock in ns and 64 random bits, so equal generations go to the later sender)."""

    generation: int
    token: str

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape."""
        return {"generation": self.generation, "token": self.token}


#: the ballot of a record from before generations, or of no record: below every real one
NO_BALLOT = Ballot(0, "")


@dataclass(frozen=True)
class Claim:
    """A ballot as a node promised it: which operation, of what digest, by whom."""

    ballot: Ballot
    op: str
    digest: str | None
    by: str
    at: float | None = None

    def describe(self) -> str:
        """``push 1700...-ab12 (generation 7) of sha256:0123456789ab by user@host``."""
        digest = (self.digest or "?")[:19]
        return f"{self.op} {self.ballot.token} (generation {self.ballot.generation}) of {digest} by {self.by}"

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape (``lost_to`` of a push or rollback)."""
        return {**self.ballot.as_json(), "op": self.op, "digest": self.digest, "by": self.by, "at": self.at}


@dataclass(frozen=True)
class Switched:
    """What a node records as current (or previous) for an environment."""

    digest: str
    ballot: Ballot = NO_BALLOT


@dataclass(frozen=True)
class NodeEpoch:
    """One node's view of one environment, as a sender reads it before claiming."""

    promise: Claim | None = None
    current: Switched | None = None
    previous: Switched | None = None
    runtime: str | None = None

    @property
    def floor(self) -> Ballot:
        """The ballot a new claim must beat on this node."""
        return max(
            self.promise.ballot if self.promise else NO_BALLOT,
            self.current.ballot if self.current else NO_BALLOT,
        )


def next_ballot(seen: Iterable[NodeEpoch], token: str) -> Ballot:
    """The ballot of a new operation: one generation above everything the nodes reported."""
    return Ballot(max((e.floor.generation for e in seen), default=0) + 1, token)


def rollback_target(epochs: Mapping[str, NodeEpoch]) -> str:
    """The one digest a rollback takes every node back to, or ValueError saying why there is none.

    It is the previous digest of the nodes holding the newest switch; they must agree, so a
    rollback never leaves the nodes on different digests. (A node that already runs the target,
    say one the last push failed on, stays there.)"""
    holding = {n: e for n, e in epochs.items() if e.current is not None}
    if not holding:
        raise ValueError("no node has a version of it to roll back from")
    newest = max(e.current.ballot for e in holding.values() if e.current)
    last = {n: e for n, e in holding.items() if e.current and e.current.ballot == newest}
    targets = {n: (e.previous.digest if e.previous else None) for n, e in last.items()}
    if any(t is None for t in targets.values()):
        lacking = sorted(n for n, t in targets.items() if t is None)
        raise ValueError(f"{', '.join(lacking)} ha{'s' if len(lacking) == 1 else 've'} no previous version")
    if len(set(targets.values())) > 1:
        parts = [f"{n} {str(t)[:19]}" for n, t in sorted(targets.items())]
        raise ValueError("the nodes disagree on the version before the last change: " + ", ".join(parts))
    return str(next(iter(targets.values())))


@dataclass(frozen=True)
class Desired:
    """What a node should run for an environment, and which switch says so."""

    digest: str
    ballot: Ballot
    node: str  # a node that made this switch (where its member list can be read)


def newer_ballots(records: Mapping[str, Switched | None]) -> dict[Ballot, str]:
    """The ballots some node holds that another node (or a node without the env) does not:
    ballot -> one node holding it. Only these need their member lists to judge drift."""
    held = {r.ballot for r in records.values() if r is not None}
    out: dict[Ballot, str] = {}
    for ballot in sorted(held - {NO_BALLOT}):
        if any(r is None or r.ballot < ballot for r in records.values()):
            out[ballot] = next(n for n, r in sorted(records.items()) if r is not None and r.ballot == ballot)
    return out


def desired(
    records: Mapping[str, Switched | None], members: Mapping[Ballot, frozenset[str] | None]
) -> dict[str, Desired | None]:
    """node -> the newest switch (by ballot) among the nodes' records whose operation included it.

    ``records`` is each node's current switch of one environment (None: the node has none);
    ``members`` the nodes each ballot of ``newer_ballots`` was for (None: not known, such as a
    record from before generations: then it is not held against anyone). A node's own record
    always counts for it, so a node is never blamed for an operation it was not part of."""
    switches: dict[Ballot, Desired] = {}
    for name, r in sorted(records.items()):
        if r is not None and r.ballot not in switches:
            switches[r.ballot] = Desired(r.digest, r.ballot, name)
    out: dict[str, Desired | None] = {}
    for name, r in records.items():
        best = Desired(r.digest, r.ballot, name) if r is not None else None
        for ballot, switch in switches.items():
            ours = members.get(ballot)
            if ours is not None and name in ours and (best is None or ballot > best.ballot):
                best = switch
        out[name] = best
    return out
