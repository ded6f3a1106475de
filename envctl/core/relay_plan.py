"""The relay tree of a push: which node each node receives its blobs from (``--fanout relay``).

Pure. The sender feeds ``seeds`` nodes over SSH; every other node fetches from a parent that holds
or is receiving the blobs, so the sender's link carries about ``seeds`` copies, not one per node.
Racks (the inventory's groups) are kept together: each rack has one head, the heads form a tree
of their own (one cross-rack stream per rack), and inside a rack the members form a tree of
fan-out ``fanout`` under the head. A head keeps one of its slots for its own rack, so every rack
can always be filled from inside it; when no head has a slot left the sender takes the rack.

Nodes that already hold every blob (``holders``: a re-push to a grown cluster, a node that joined
late) are the roots instead: they take the sender's place, so its link carries nothing for the
blobs they hold. A rack with a holder fills itself from it; a rack without one gets its head
from a holder (or a head) with a slot to spare, and from the sender only when none has.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from envctl.errors import InputError

MAX_FANOUT = 16
MAX_SEEDS = 64  # the sender's link carries this many copies at most: past it, use direct
#: ``None`` as a parent: the node receives from the sender itself
SENDER = None


@dataclass(frozen=True)
class RelayPlan:
    """Each node's parent (``None``: the sender) and its rack, in the order nodes were given."""

    parents: Mapping[str, str | None]
    racks: Mapping[str, str]
    #: roots that already hold every blob: parent ``None`` too, but the sender streams them nothing
    holders: frozenset[str] = frozenset()

    def children(self, node: str | None) -> list[str]:
        """The nodes that fetch from ``node`` (``None``: the roots, holders included)."""
        return [n for n, p in self.parents.items() if p == node]

    def seeds(self) -> list[str]:
        """The nodes the sender itself streams to (roots that do not hold the image)."""
        return [n for n in self.children(SENDER) if n not in self.holders]

    def ancestors(self, node: str) -> list[str]:
        """``node``'s parent, its parent's parent ... up to a seed (nearest first)."""
        out: list[str] = []
        parent = self.parents[node]
        while parent is not None:
            out.append(parent)
            parent = self.parents[parent]
        return out

    def depth(self, node: str) -> int:
        """1 for a seed, 2 for its children ..."""
        return len(self.ancestors(node)) + 1

    def relays(self) -> list[str]:
        """Nodes that have children (they serve blobs during the push)."""
        return [n for n in self.parents if self.children(n)]

    def to_dict(self) -> dict[str, str | None]:
        """``{node: parent}`` for the report (``None``: the sender)."""
        return dict(self.parents)


def rack_of(groups: Sequence[str], sizes: Mapping[str, int]) -> str:
    """The rack of a node in ``groups``: its smallest group of at least two pushed nodes (``sizes``
    counts them; ties go to the first named), so a group holding every node (``all``,
    ``sandbox``) or a one-node group says nothing; else its first group; else ``""``."""
    shared = [g for g in groups if sizes.get(g, 0) >= 2]
    if shared:
        return min(shared, key=lambda g: sizes[g])
    return groups[0] if groups else ""


def plan_relay(
    nodes: Sequence[tuple[str, Sequence[str]]],
    fanout: int = 2,
    seeds: int = 1,
    holders: Collection[str] = (),
) -> RelayPlan:
    """Lay out the tree over ``nodes`` (name and inventory groups, in inventory order); ``holders``
    name the nodes that already hold every blob (they become the roots, see the module)."""
    if not 1 <= fanout <= MAX_FANOUT:
        raise InputError(f"relay fan-out {fanout}: expected 1 to {MAX_FANOUT}")
    if not 1 <= seeds <= MAX_SEEDS:
        raise InputError(f"relay seeds {seeds}: expected 1 to {MAX_SEEDS}")
    names = [n for n, _ in nodes]
    if len(set(names)) != len(names):
        raise InputError("relay plan: a node is named twice")
    held = frozenset(holders)
    if stray := sorted(held - set(names)):
        raise InputError(f"relay plan: holder {stray[0]} is not one of the nodes")
    sizes: dict[str, int] = {}
    for _, groups in nodes:
        for g in dict.fromkeys(groups):
            sizes[g] = sizes.get(g, 0) + 1
    racks = {name: rack_of(tuple(groups), sizes) for name, groups in nodes}
    members: dict[str, list[str]] = {}  # each rack's nodes that need the blobs
    rack_holders: dict[str, list[str]] = {}
    for name in names:
        members.setdefault(racks[name], [])
        rack_holders.setdefault(racks[name], [])
        (rack_holders if name in held else members)[racks[name]].append(name)

    parents: dict[str, str | None] = {h: SENDER for h in names if h in held}
    slots: dict[str | None, int] = {SENDER: 0 if held else seeds}
    keep: dict[str, int] = {}  # slots a top keeps for its own rack
    tops: list[str] = []  # holders, then placed heads, shallowest first: a head takes the first spare
    for rack, hs in rack_holders.items():
        for i, h in enumerate(hs):
            slots[h] = fanout
            keep[h] = 1 if i == 0 and members[rack] else 0
            tops.append(h)
    for rack, rack_nodes in members.items():
        if not rack_nodes or rack_holders[rack]:
            continue  # nothing to fetch, or filled from its own holders below
        head = rack_nodes[0]
        # the sender's own slots first (shallowest), then a top's spare (one stays for its rack)
        parent = SENDER if slots[SENDER] else next((t for t in tops if slots[t] > keep[t]), SENDER)
        if parent is SENDER and slots[SENDER] == 0:
            slots[SENDER] = 1  # no top has room: the sender takes this rack too
        parents[head] = parent
        slots[parent] -= 1
        slots[head], keep[head] = fanout, 1
        tops.append(head)
    for rack, rack_nodes in members.items():
        # breadth first inside the rack, under its holders or its head: depth grows as log(fanout)
        placed = list(rack_holders[rack]) or rack_nodes[:1]
        for name in rack_nodes if rack_holders[rack] else rack_nodes[1:]:
            parent = next(p for p in placed if slots[p] > 0)
            parents[name] = parent
            slots[parent] -= 1
            slots[name] = fanout
            placed.append(name)
    return RelayPlan({n: parents[n] for n in names}, racks, held)


def sources(plan: RelayPlan, node: str) -> list[str]:
    """Where ``node`` fetches from, in order: its parent, then each ancestor up to the seed (they
    hold the blobs or receive them ahead of it). Past the last, the sender streams the rest."""
    return plan.ancestors(node)
