"""``doctor`` over the fan-out: the agent's facts per node, the cache with its time, the ledger."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from envctl.adapters import ledger
from envctl.adapters.matrix_files import load_matrix
from envctl.core.node import NodeSpec
from envctl.core.transport import Transport
from envctl.errors import TransportError
from envctl.services.doctor import doctor as svc

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
from nd_local import LocalPool, LocalTransport


def _nodes(tmp_path: Path) -> list[NodeSpec]:
    return [
        NodeSpec(
            name,
            "localhost",
            store=str(tmp_path / name / "store"),
            prefix_root=str(tmp_path / name / "envs"),
            python=sys.executable,
        )
        for name in ("a", "b")
    ]


def test_doctor_asks_every_node_then_serves_the_cache_until_refresh(tmp_path: Path) -> None:
    matrix, nodes, pool = load_matrix(), _nodes(tmp_path), LocalPool()
    report = svc.doctor(nodes, pool, matrix, subject="inv.toml")
    assert set(report.nodes) == {"a", "b"} and pool.connects == ["a", "b"]
    for v in report.nodes.values():
        assert not isinstance(v, Exception) and v.cached_at is None
        assert v.facts.python is not None and v.facts.glibc is not None
    doc = report.as_json()
    assert doc["schema"] == "envctl.doctor/1" and sum(doc["verdicts"].values()) == 2

    again = svc.doctor(nodes, pool, matrix)
    assert pool.connects == ["a", "b"]  # nobody asked: the cache answered, with its time
    assert all(v.cached_at is not None for v in again.nodes.values())  # type: ignore[union-attr]

    svc.doctor(nodes, pool, matrix, refresh=True)
    assert pool.connects == ["a", "b", "a", "b"]
    events = ledger.events("doctor")
    assert len(events) == 3 and events[-1].subject == "inv.toml" and events[-1].targets == ("a", "b")
    assert set(events[0].details["nodes"]) == {"a", "b"}


def test_an_unreachable_node_fails_the_run_but_not_the_others(tmp_path: Path) -> None:
    def dial(node: NodeSpec) -> Transport:
        if node.name == "b":
            raise TransportError("b", "connection refused")
        return LocalTransport(node.name)

    report = svc.doctor(_nodes(tmp_path), LocalPool(dial), load_matrix())
    assert isinstance(report.nodes["b"], TransportError) and report.failing == ["b"]
    assert report.exit_code == 1 and report.as_json()["verdicts"]["unreachable"] == 1
    assert ledger.events("doctor")[0].details["nodes"]["b"]["status"] == "unreachable"


def test_local_runs_the_agent_code_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = NodeSpec("here", "localhost", store=str(tmp_path / "s"), prefix_root=str(tmp_path / "p"))
    report = svc.doctor([node], None, load_matrix())
    (v,) = report.nodes.values()
    assert not isinstance(v, Exception) and v.facts.agent == "local" and v.facts.cores
