"""``envctl doctor``: read every node's facts in parallel, hold them against the rules, record the run.

Facts come from the node agent's ``facts`` command over the one multi-node path (``Fanout``,
the shared SSH pool), or, with ``local``, from the same agent code run on this machine. Each
node's raw answer is cached in the state directory with its time; a later run reuses it until
it is ``max_age`` seconds old or ``refresh`` is asked. Parsing and verdicts happen here, in the
core (``envctl.core.node_facts``, ``envctl.core.doctor``), so an older agent's answer reads the
same. Every run is one ``doctor`` event in the ledger.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from envctl.adapters import facts_cache, ledger
from envctl.core.doctor import Finding, Needs, Verdict, across, diagnose
from envctl.core.group import GroupResult
from envctl.core.matrix import Matrix
from envctl.core.node import NodeSpec
from envctl.core.node_facts import NodeFacts, node_facts
from envctl.core.transport import Connector, Transport
from envctl.errors import EnvctlError, RemoteError
from envctl.services.cluster.fanout import Fanout, on_nodes
from envctl.services.deliver.nodeclient import NodeClient

MAX_AGE = 3600.0  # seconds a cached answer stands in for the node
TIMEOUT = 300.0  # seconds one node may take (each of its probes is bounded by the agent)


@dataclass(frozen=True)
class DoctorReport:
    """Every selected node's verdict (or why it could not be asked)."""

    nodes: GroupResult[Verdict]
    lock: str | None = None

    @property
    def failing(self) -> list[str]:
        """Nodes that failed, or could not be asked."""
        return [n for n, v in self.nodes.items() if isinstance(v, EnvctlError) or v.level == "fail"]

    @property
    def exit_code(self) -> int:
        """0 when every node answered and none fails (warnings pass), else 1."""
        return 1 if self.failing else 0

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape (``envctl.doctor/1``)."""
        counts = {"ok": 0, "warn": 0, "fail": 0, "unreachable": 0}
        for v in self.nodes.values():
            counts["unreachable" if isinstance(v, EnvctlError) else v.level] += 1
        return self.nodes.as_json("doctor", ok=not self.failing, lock=self.lock, verdicts=counts)


def _answer(node: NodeSpec, transport: Transport) -> dict[str, Any]:
    asked = time.time()
    raw = NodeClient(transport, node).call("facts")
    answered = time.time()
    if not isinstance(raw.get("probes"), dict):
        raise RemoteError(node.name, "the envctl agent's facts have no probes", hint="upgrade envctl")
    return {"at": answered, "asked_at": asked, "answered_at": answered, "raw": raw}


def _local(node: NodeSpec) -> dict[str, Any]:
    from envctl.node.facts import collect  # the agent's own code, run in this process

    asked = time.time()
    raw = collect(node.store, node.prefix_root, node.docker_host)
    answered = time.time()
    raw["agent"] = "local"
    return {"at": answered, "asked_at": asked, "answered_at": answered, "raw": raw}


def local_node() -> NodeSpec:
    """This machine as a node (default store and prefix root)."""
    return NodeSpec(name=socket.gethostname() or "local", host="localhost")


def doctor(
    nodes: Sequence[NodeSpec],
    pool: Connector | None,
    matrix: Matrix,
    *,
    needs: Needs | None = None,
    refresh: bool = False,
    max_age: float = MAX_AGE,
    parallel: int = 16,
    subject: str = "local",
) -> DoctorReport:
    """Facts and verdicts of ``nodes``; ``pool`` None: probe this machine (``nodes`` is it)."""
    entries = _entries(nodes, pool, refresh=refresh, max_age=max_age, parallel=parallel)
    facts: dict[str, NodeFacts] = {}
    for name, e in entries.items():
        if not isinstance(e, EnvctlError):
            facts[name] = node_facts(e["raw"], e.get("asked_at"), e.get("answered_at"))
    findings = {name: diagnose(f, matrix, needs) for name, f in facts.items()}
    extra = across(findings, facts)

    def verdict(node: NodeSpec) -> Verdict | EnvctlError:
        e = entries[node.name]
        if isinstance(e, EnvctlError):
            return e
        found: tuple[Finding, ...] = findings[node.name] + tuple(extra.get(node.name, ()))
        return Verdict(facts[node.name], found, float(e["at"]) if e.get("cached") else None)

    report = DoctorReport(GroupResult({n.name: verdict(n) for n in nodes}), needs.source if needs else None)
    ledger.record(
        "doctor",
        subject,
        [n.name for n in nodes],
        "ok" if report.exit_code == 0 else "failed",
        {
            "nodes": {
                n: (
                    {"status": "unreachable", "error": v.message}
                    if isinstance(v, EnvctlError)
                    else {"status": v.level, "findings": [f.code for f in v.findings]}
                )
                for n, v in report.nodes.items()
            },
            "lock": report.lock,
            "refresh": refresh,
        },
    )
    return report


def facts_of(
    nodes: Sequence[NodeSpec],
    pool: Connector | None,
    *,
    refresh: bool = False,
    max_age: float = MAX_AGE,
    parallel: int = 16,
    fan: Fanout | None = None,
) -> GroupResult[NodeFacts]:
    """Every node's facts (cached ones within ``max_age``), or why the node could not be asked.

    With ``fan``, nodes are asked through it (``pool`` unused): its connections then serve the
    caller's next phase, and a node it could not reach is not dialled again.
    """
    entries = _entries(nodes, pool, refresh=refresh, max_age=max_age, parallel=parallel, fan=fan)
    return GroupResult(
        {
            n.name: e
            if isinstance(e := entries[n.name], EnvctlError)
            else node_facts(e["raw"], e.get("asked_at"), e.get("answered_at"))
            for n in nodes
        }
    )


def _entries(
    nodes: Sequence[NodeSpec],
    pool: Connector | None,
    *,
    refresh: bool,
    max_age: float,
    parallel: int,
    fan: Fanout | None = None,
) -> dict[str, dict[str, Any] | EnvctlError]:
    """Each node's raw answer: from the cache while fresh, else asked (and cached)."""
    now = time.time()
    entries: dict[str, dict[str, Any] | EnvctlError] = {}
    ask = []
    for node in nodes:
        cached = None if refresh else facts_cache.load(node.name, _address(node))
        if cached is not None and 0 <= now - float(cached["at"]) <= max_age:
            entries[node.name] = {**cached, "cached": True}
        else:
            ask.append(node)
    if ask and fan is not None:
        fresh: GroupResult[Any] = fan.run(_answer, only={n.name for n in ask}, timeout=TIMEOUT)
    elif ask and pool is None:
        fresh = GroupResult({n.name: _local(n) for n in ask})
    elif ask:
        assert pool is not None
        fresh = on_nodes(ask, pool, _answer, parallel=parallel, timeout=TIMEOUT)
    else:
        fresh = GroupResult({})
    for name, value in fresh.items():
        entries[name] = value
        if not isinstance(value, EnvctlError):
            node = next(n for n in ask if n.name == name)
            facts_cache.store(node.name, _address(node), value)
    return entries


def _address(node: NodeSpec) -> str:
    jump = f" via {_address(node.jump)}" if node.jump else ""
    return f"{node.user}@{node.host}:{node.port}{jump}"
