"""A flow-level model of delivering one image to N nodes, for sizes no test machine reaches.

Pure: numbers in, numbers out (bytes, bytes per second, seconds). ``bench/fanout_sim.py`` drives it
and docs/fanout-bench.md states its assumptions. Four ways to deliver are modelled:

- ``direct``: the sender streams the whole image to every node; its uplink is shared max-min
  fairly by the nodes served at once (``parallel``), each capped by its downlink and disk.
- ``relay``: a tree laid out in level order (the sender feeds ``root_fanout`` nodes, every node
  forwards to ``fanout`` more), pipelined by chunks: a child receives chunk k once its parent has
  it, so a chain of depth d finishes near ``size/rate + d * chunk/rate``. A parent's uplink is
  shared max-min fairly by its children. A node that dies has its children re-parented to its
  nearest live ancestor after ``detect`` seconds; they resume from the bytes they hold.
- ``registry``: the sender uploads once to a registry and every node pulls from it at once (a
  star around the registry's uplink). With ``piece`` set (envctl's push: a blob is announced to
  the nodes once it is up), pulls start when the first piece is up, and no node can finish
  before the last piece is up plus its own pull of that piece; else pulls start after the
  whole upload.
- ``registry+p2p``: the same upload, then a piece-level mirror (Dragonfly, Kraken): every node
  downloads at its share of the swarm's upload capacity (the registry's plus ``p2p_efficiency``
  of every peer's), after the pieces needed ``log2(N)`` rounds of one chunk each to spread.

Rates stay constant between events (a completion or a death); the network is a non-blocking
fabric (no rack oversubscription), and CPU, TCP start-up and per-connection set-up are not modelled.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from envctl.errors import InputError

SENDER = -1
MODES = ("direct", "relay", "registry", "registry+p2p")
INF = math.inf


@dataclass(frozen=True)
class Scenario:
    """One delivery problem. Rates in bytes per second, sizes in bytes, times in seconds."""

    nodes: int
    size: float
    sender_up: float
    node_down: float
    node_up: float
    disk: float = INF
    registry_up: float = INF
    registry_down: float = INF
    chunk: float = 4 * 2**20
    parallel: int | None = None  # direct: nodes served at once (None: all)
    detect: float = 1.0  # seconds until an orphan notices its parent is gone
    p2p_efficiency: float = 0.9
    slow: frozenset[int] = frozenset()  # nodes whose disk writes at disk * slow_factor
    slow_factor: float = 0.1
    deaths: tuple[tuple[int, float], ...] = ()  # (node, time it dies)
    preloaded: bool = False  # registry modes: the image is already there (no upload first)
    piece: float = 0.0  # registry: nodes pull each piece (blob) once it is up; 0: after the upload

    def __post_init__(self) -> None:
        if not 1 <= self.nodes <= 1_000_000:
            raise InputError(f"nodes {self.nodes}: expected 1 to 1,000,000")
        for name in ("size", "sender_up", "node_down", "node_up", "disk", "registry_up", "registry_down"):
            value = getattr(self, name)
            if not value > 0:  # also refuses NaN
                raise InputError(f"{name} {value}: expected a positive number")
        if not 0 < self.chunk <= self.size:
            raise InputError(f"chunk {self.chunk}: expected more than 0 and at most the image size")
        if not 0 <= self.piece <= self.size:
            raise InputError(f"piece {self.piece}: expected 0 to the image size")
        if self.parallel is not None and self.parallel < 1:
            raise InputError(f"parallel {self.parallel}: expected at least 1")
        if not 0 < self.p2p_efficiency <= 1 or not 0 < self.slow_factor <= 1 or not self.detect >= 0:
            raise InputError("p2p_efficiency and slow_factor: expected (0, 1]; detect: >= 0")
        for node, when in self.deaths:
            if not 0 <= node < self.nodes or not when >= 0:
                raise InputError(f"death ({node}, {when}): expected a node index and a time >= 0")

    def node_cap(self, node: int) -> float:
        """The fastest a node can take bytes in: its downlink or its disk."""
        disk = self.disk * self.slow_factor if node in self.slow else self.disk
        return min(self.node_down, disk)

    @property
    def one_copy(self) -> float:
        """Seconds one copy of the image takes on the sender's link: the physical floor."""
        return self.size / self.sender_up


@dataclass(frozen=True)
class Outcome:
    """What one mode achieved: per-node completion times and the bytes each link carried."""

    mode: str
    scenario: Scenario
    finish: tuple[float, ...]  # completion of every node that got the whole image, ascending
    lost: int  # nodes that died before they had it
    sender_bytes: float
    busiest: str  # "sender", "registry" or "node N"
    busiest_bytes: float
    extra: dict[str, Any] = field(default_factory=dict)

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of the completion times (NaN when no node completed)."""
        if not self.finish:
            return math.nan
        rank = max(1, math.ceil(q / 100 * len(self.finish)))
        return self.finish[rank - 1]

    @property
    def makespan(self) -> float:
        """When the last node that completed did."""
        return self.finish[-1] if self.finish else math.nan

    def as_json(self) -> dict[str, Any]:
        """Stable JSON view (seconds, bytes)."""
        one = self.scenario.one_copy
        return {
            "mode": self.mode,
            "nodes": self.scenario.nodes,
            "completed": len(self.finish),
            "lost": self.lost,
            "p50_s": round(self.percentile(50), 3),
            "p99_s": round(self.percentile(99), 3),
            "max_s": round(self.makespan, 3),
            "max_over_one_copy": round(self.makespan / one, 3),
            "sender_bytes": round(self.sender_bytes),
            "sender_copies": round(self.sender_bytes / self.scenario.size, 3),
            "busiest_link": self.busiest,
            "busiest_bytes": round(self.busiest_bytes),
            **self.extra,
        }


def max_min_share(capacity: float, caps: Sequence[float]) -> list[float]:
    """Max-min fair rates for flows with these caps sharing ``capacity`` (water-filling)."""
    rates = [0.0] * len(caps)
    left, count = capacity, len(caps)
    for i in sorted(range(len(caps)), key=caps.__getitem__):
        share = left / count
        rates[i] = min(caps[i], share)
        left -= rates[i]
        count -= 1
    return rates


def _shared_server(
    sc: Scenario, capacity: float, start: float, parallel: int
) -> tuple[dict[int, float], float, int]:
    """Every node pulls the whole image from one server; at most ``parallel`` at once, FIFO.

    Event-driven fluid: flows with equal caps get equal rates, so each cap is a bucket whose
    members all progress by the same bytes; a flow finishes when its bucket's cumulative
    service reaches its entry mark plus the image size. Returns finish times, bytes the server
    sent, and how many nodes died before completing.
    """
    deaths = sorted((max(t, start), n) for n, t in sc.deaths)
    dead_at = {n: t for t, n in deaths}
    pending = deque(range(sc.nodes))
    served: dict[float, float] = {}  # cap -> cumulative bytes each member received
    members: dict[float, int] = {}
    heaps: dict[float, list[tuple[float, int]]] = {}
    entry: dict[int, tuple[float, float]] = {}  # active node -> (cap, service mark at entry)
    finish: dict[int, float] = {}
    sent, t, next_death = 0.0, start, 0
    lost: set[int] = set()

    def admit() -> None:
        while pending and len(entry) < parallel:
            node = pending.popleft()
            if dead_at.get(node, INF) <= t:
                lost.add(node)  # died while it waited for its turn
                continue
            cap = sc.node_cap(node)
            mark = served.setdefault(cap, 0.0)
            members[cap] = members.get(cap, 0) + 1
            entry[node] = (cap, mark)
            heapq.heappush(heaps.setdefault(cap, []), (mark + sc.size, node))

    def drop(node: int) -> None:
        cap, _ = entry.pop(node)
        members[cap] -= 1

    admit()
    while entry:
        rates: dict[float, float] = {}
        left, count = capacity, len(entry)
        for cap in sorted(c for c, k in members.items() if k):
            rates[cap] = min(cap, left / count)
            left -= rates[cap] * members[cap]
            count -= members[cap]
        step, who = INF, -1
        for cap, rate in rates.items():
            heap = heaps[cap]
            while heap and heap[0][1] not in entry:
                heapq.heappop(heap)  # finished or dead: dropped lazily
            dt = max(0.0, heap[0][0] - served[cap]) / rate
            if dt < step:
                step, who = dt, heap[0][1]
        while next_death < len(deaths) and (
            deaths[next_death][1] not in entry and deaths[next_death][0] <= t
        ):
            next_death += 1  # already finished, or dead while pending
        death = deaths[next_death] if next_death < len(deaths) else (INF, -1)
        if death[0] - t < step:
            step, who = max(0.0, death[0] - t), -1
        for cap, rate in rates.items():
            served[cap] += rate * step
        t += step
        if who >= 0:
            sent += sc.size
            finish[who] = t
            drop(who)
        else:
            node = death[1]
            next_death += 1
            if node in entry:
                cap, mark = entry[node]
                sent += served[cap] - mark
                lost.add(node)
                drop(node)
        admit()
    return finish, sent, len(lost)


def direct(sc: Scenario) -> Outcome:
    """The sender streams the image to every node; its uplink is the shared bottleneck."""
    finish, sent, lost = _shared_server(sc, sc.sender_up, 0.0, sc.parallel or sc.nodes)
    return Outcome("direct", sc, tuple(sorted(finish.values())), lost, sent, "sender", sent)


def _upload(sc: Scenario) -> float:
    return 0.0 if sc.preloaded else sc.size / min(sc.sender_up, sc.registry_down)


def registry(sc: Scenario) -> Outcome:
    """One upload to the registry; every node pulls from it at once (see the module docstring)."""
    up = _upload(sc)
    if sc.piece and up:
        first = up * sc.piece / sc.size
        finish, sent, lost = _shared_server(sc, sc.registry_up, first, sc.nodes)
        share = sc.registry_up / sc.nodes
        finish = {n: max(t, up + sc.piece / min(sc.node_cap(n), share)) for n, t in finish.items()}
    else:
        finish, sent, lost = _shared_server(sc, sc.registry_up, up, sc.nodes)
    busiest = ("registry", sent) if sent >= sc.size else ("sender", sc.size)
    extra = {"upload_s": round(up, 3)}
    sender = 0.0 if sc.preloaded else sc.size
    return Outcome("registry", sc, tuple(sorted(finish.values())), lost, sender, *busiest, extra)


def registry_p2p(sc: Scenario) -> Outcome:
    """One upload, then a piece-level mirror: each node gets its share of the swarm's uploads."""
    up = _upload(sc)
    dies = dict(sc.deaths)
    swarm = sc.registry_up + sc.p2p_efficiency * sc.node_up * sc.nodes
    caps = [sc.node_cap(n) for n in range(sc.nodes)]
    rates = max_min_share(swarm, caps)
    spread = math.ceil(math.log2(sc.nodes + 1))  # doubling rounds until every node holds pieces
    finish, lost = [], 0
    for n, rate in enumerate(rates):
        done = up + spread * sc.chunk / rate + sc.size / rate
        if dies.get(n, INF) < done:
            lost += 1
        else:
            finish.append(done)
    total = sc.size * sc.nodes
    origin = min(total, total * sc.registry_up / swarm)
    peer = (total - origin) / sc.nodes
    busiest = max([("registry", origin), ("sender", sc.size), ("node 0", peer)], key=lambda kv: kv[1])
    extra = {"upload_s": round(up, 3), "registry_bytes": round(origin)}
    sender = 0.0 if sc.preloaded else sc.size
    return Outcome("registry+p2p", sc, tuple(sorted(finish)), lost, sender, *busiest, extra)


@dataclass
class _Tree:
    """Mutable state of a relay simulation: each live incomplete node's current segment is a
    linear profile from (``begin``, ``got``) to (``end``, size), valid until an event upstream."""

    sc: Scenario
    parent: list[int]
    children: dict[int, list[int]]
    got: list[float]  # bytes held when the current segment began
    begin: list[float]  # when the node receives again in this segment
    end: list[float]  # when it completes, at this segment's rates
    rate: list[float]
    alive: list[bool]
    done: dict[int, float] = field(default_factory=dict)  # node -> when it completed (recorded)
    resume_after: dict[int, float] = field(default_factory=dict)

    def complete_by(self, node: int, now: float) -> bool:
        return node == SENDER or node in self.done or self.end[node] <= now

    def time_at(self, node: int, amount: float, now: float) -> float:
        """When ``node`` holds ``amount`` bytes, at its current segment's rates."""
        if self.complete_by(node, now) or self.got[node] >= amount:
            return now
        g, b = self.got[node], self.begin[node]
        return b + (amount - g) / (self.sc.size - g) * (self.end[node] - b)

    def held(self, node: int, when: float) -> float:
        """Bytes ``node`` holds at ``when`` (within its current segment)."""
        if node == SENDER or node in self.done:
            return self.sc.size
        g, b, e = self.got[node], self.begin[node], self.end[node]
        if when <= b:
            return g
        return g + (self.sc.size - g) * min(1.0, (when - b) / (e - b))

    def below(self, top: int) -> list[int]:
        """The live nodes under ``top``, in level order (parents before children)."""
        found, queue = [], deque(self.children.get(top, ()))
        while queue:
            node = queue.popleft()
            found.append(node)
            queue.extend(self.children.get(node, ()))
        return sorted(found)

    def plan(self, parents: Sequence[int], now: float) -> None:
        """New segments, from ``now``, for the incomplete children of ``parents`` (in order:
        a parent's own segment is planned before its children's)."""
        sc = self.sc
        for p in parents:
            kids = [c for c in self.children.get(p, ()) if c not in self.done]
            if not kids:
                continue
            full = self.complete_by(p, now)
            up = sc.sender_up if p == SENDER else sc.node_up
            caps = [min(sc.node_cap(c), INF if full else self.rate[p]) for c in kids]
            for c, r in zip(kids, max_min_share(up, caps), strict=True):
                first = self.time_at(p, min(sc.size, self.got[c] + sc.chunk), now)
                start = max(now, self.resume_after.get(c, now), first)
                parent_end = now if full else self.end[p]
                self.rate[c] = r
                self.begin[c] = start
                self.end[c] = max(start + (sc.size - self.got[c]) / r, parent_end + sc.chunk / r)


def relay(sc: Scenario, fanout: int, root_fanout: int = 1) -> Outcome:
    """A pipelined relay tree of this fan-out; dead relays' children are re-parented and resume.

    A death re-plans only the subtree of the adoptive parent: everything else keeps its rates.
    """
    if fanout < 1 or root_fanout < 1:
        raise InputError(f"fanout {fanout}, root fan-out {root_fanout}: expected at least 1")
    n = sc.nodes
    parent = [SENDER if k < root_fanout else (k - root_fanout) // fanout for k in range(n)]
    children: dict[int, list[int]] = {}
    for k, p in enumerate(parent):
        children.setdefault(p, []).append(k)
    tree = _Tree(sc, parent, children, [0.0] * n, [0.0] * n, [0.0] * n, [INF] * n, [True] * n)
    tree.plan([SENDER, *range(n)], 0.0)
    link: dict[int, float] = {}
    lost: set[int] = set()
    for victim, when in sorted(sc.deaths, key=lambda d: d[1]):
        if not tree.alive[victim]:
            continue
        up = tree.parent[victim]
        while up != SENDER and not tree.alive[up]:
            up = tree.parent[up]
        affected = tree.below(up)
        _advance(tree, link, when, affected)
        tree.alive[victim] = False
        if victim not in tree.done:
            lost.add(victim)
        _reparent(tree, victim, up, when + sc.detect)
        tree.plan([up, *(a for a in affected if a != victim)], when)
    for c in range(n):
        if tree.alive[c] and c not in tree.done:
            link[tree.parent[c]] = link.get(tree.parent[c], 0.0) + sc.size - tree.got[c]
            tree.done[c] = tree.end[c]
    finish = tuple(sorted(t for c, t in tree.done.items() if c not in lost))
    top = max(link, key=lambda k: link[k])
    name = "sender" if top == SENDER else f"node {top}"
    extra = {"fanout": fanout, "root_fanout": root_fanout, "depth": _depth(parent)}
    return Outcome("relay", sc, finish, len(lost), link.get(SENDER, 0.0), name, link[top], extra)


def _advance(tree: _Tree, link: dict[int, float], when: float, nodes: Sequence[int]) -> None:
    """End the current segments of ``nodes`` (level order) at ``when``: bytes held, bytes on
    their parents' links, completions."""
    held = {c: tree.held(c, when) for c in nodes if tree.alive[c] and c not in tree.done}
    for c, h in held.items():  # every profile is read before any is changed
        p = tree.parent[c]
        upstream = tree.sc.size if p == SENDER or p in tree.done else held.get(p, tree.held(p, when))
        h = max(min(h, upstream), tree.got[c])
        link[p] = link.get(p, 0.0) + h - tree.got[c]
        if tree.end[c] <= when:
            tree.done[c] = tree.end[c]
        tree.got[c] = h


def _reparent(tree: _Tree, dead: int, up: int, resume: float) -> None:
    """The dead node's children go to ``up``, its nearest live ancestor (the sender never dies)."""
    for c in tree.children.pop(dead, []):
        tree.parent[c] = up
        tree.children.setdefault(up, []).append(c)
        tree.resume_after[c] = resume
    siblings = tree.children.get(tree.parent[dead], [])
    if dead in siblings:
        siblings.remove(dead)


def _depth(parent: Sequence[int]) -> int:
    depth = [0] * len(parent)
    for k, p in enumerate(parent):
        depth[k] = 1 if p == SENDER else depth[p] + 1
    return max(depth, default=0)


def random_deaths(nodes: int, fraction: float, window: float, seed: int) -> tuple[tuple[int, float], ...]:
    """``fraction`` of the nodes, chosen by ``seed``, each dying at a uniform time in [0, window)."""
    if not 0 <= fraction <= 1 or not window > 0:
        raise InputError(f"kill fraction {fraction} / window {window}: expected [0, 1] and > 0")
    rnd = random.Random(seed)
    victims = rnd.sample(range(nodes), round(nodes * fraction))
    return tuple(sorted(((v, rnd.uniform(0, window)) for v in victims), key=lambda d: d[1]))


def simulate(sc: Scenario, mode: str, fanout: int = 4, root_fanout: int = 1) -> Outcome:
    """One of ``MODES`` for this scenario."""
    if mode == "direct":
        return direct(sc)
    if mode == "relay":
        return relay(sc, fanout, root_fanout)
    if mode == "registry":
        return registry(sc)
    if mode == "registry+p2p":
        return registry_p2p(sc)
    raise InputError(f"mode {mode!r}: expected one of {', '.join(MODES)}")


def with_nodes(sc: Scenario, nodes: int) -> Scenario:
    """The same links for another cluster size (deaths and slow nodes dropped)."""
    return replace(sc, nodes=nodes, deaths=(), slow=frozenset())
