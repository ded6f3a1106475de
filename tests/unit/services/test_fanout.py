"""The one fan-out, with fake transports: the bound, isolated failures, timeouts, one connection
per node, the result map and what it means for the exit code."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from envctl.core.node import NodeSpec
from envctl.core.transport import CommandResult, Transport
from envctl.errors import EnvctlError, RemoteError, TransportError
from envctl.services.cluster.fanout import Fanout, on_nodes, parallel_map
from envctl.services.cluster.reach import CommandFailed, check_nodes, run_everywhere


def nodes(count: int) -> list[NodeSpec]:
    return [NodeSpec(name=f"n{i}", host=f"h{i}") for i in range(count)]


class FakeTransport:
    """Answers ``run`` with ``answer(argv)``; ``close`` unblocks a hung ``run``, as a closed SSH
    connection does."""

    def __init__(self, node: str, answer: Callable[[Sequence[str]], CommandResult]) -> None:
        self.node = node
        self.answer = answer
        self.closed = threading.Event()

    def run(self, argv: Sequence[str], **_: Any) -> CommandResult:
        if self.closed.is_set():
            raise TransportError(self.node, "connection closed")
        return self.answer(argv)

    def upload(self, argv: Sequence[str], source: Any, **_: Any) -> CommandResult:
        return self.run(argv)

    def close(self) -> None:
        self.closed.set()


class FakePool:
    """A Connector of FakeTransports; ``refuse`` names nodes whose connect fails."""

    def __init__(
        self,
        answer: Callable[[str, Sequence[str]], CommandResult] | None = None,
        refuse: Sequence[str] = (),
    ) -> None:
        self.answer = answer or (lambda node, argv: CommandResult(tuple(argv), 0, node.encode(), b""))
        self.refuse = set(refuse)
        self.opened: list[FakeTransport] = []
        self.lock = threading.Lock()

    def connect(self, node: NodeSpec) -> Transport:
        if node.name in self.refuse:
            raise TransportError(node.name, "connection refused")
        transport = FakeTransport(node.name, lambda argv: self.answer(node.name, argv))
        with self.lock:
            self.opened.append(transport)
        return transport


def test_parallelism_is_bounded_and_used() -> None:
    running, peak = 0, 0
    lock = threading.Lock()

    def slow(node: str, argv: Sequence[str]) -> CommandResult:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.03)
        with lock:
            running -= 1
        return CommandResult(tuple(argv), 0, b"", b"")

    result = on_nodes(nodes(10), FakePool(slow), lambda n, t: t.run(["true"]).exit_code, parallel=3)
    assert peak == 3 and result.outcome == "all" and len(result) == 10


def test_a_failing_node_never_stops_the_others_and_the_map_keeps_node_order() -> None:
    def answer(node: str, argv: Sequence[str]) -> CommandResult:
        if node == "n3":
            raise RemoteError(node, "agent failed")
        return CommandResult(tuple(argv), 0, node.encode(), b"")

    pool = FakePool(answer, refuse=["n1"])
    result = on_nodes(nodes(6), pool, lambda n, t: t.run(["x"]).stdout.decode(), parallel=2)
    assert list(result) == [f"n{i}" for i in range(6)]
    assert result.succeeded == {"n0": "n0", "n2": "n2", "n4": "n4", "n5": "n5"}
    assert {n: e.message for n, e in result.failed.items()} == {
        "n1": "n1: connection refused",
        "n3": "n3: agent failed",
    }
    assert (result.outcome, result.exit_code) == ("partial", 1)
    assert all(t.closed.is_set() for t in pool.opened)  # every connection closed at the end


def test_none_succeeding_is_outcome_none_exit_1_and_all_is_exit_0() -> None:
    refused = on_nodes(nodes(3), FakePool(refuse=["n0", "n1", "n2"]), lambda n, t: 1)
    assert (refused.outcome, refused.exit_code) == ("none", 1)
    fine = on_nodes(nodes(3), FakePool(), lambda n, t: 1)
    assert (fine.outcome, fine.exit_code) == ("all", 0)


def test_a_hung_node_times_out_alone_its_connection_is_closed_and_its_slot_reused() -> None:
    pool = FakePool()

    def op(node: NodeSpec, transport: Transport) -> str:
        if node.name == "n0":
            assert isinstance(transport, FakeTransport)
            transport.closed.wait(30)  # hangs until the fan-out gives up and closes it
            return "late"
        return "fast"

    start = time.monotonic()
    result = on_nodes(nodes(4), pool, op, parallel=1, timeout=0.3)
    assert time.monotonic() - start < 5
    error = result["n0"]
    assert isinstance(error, TransportError) and error.message == "n0: no result within 0.3s"
    assert result.succeeded == {"n1": "fast", "n2": "fast", "n3": "fast"}  # with parallel=1
    assert pool.opened[0].node == "n0" and pool.opened[0].closed.is_set()


def test_a_phase_may_bound_its_own_time_and_a_node_it_timed_out_stays_out() -> None:
    def op(node: NodeSpec, transport: Transport) -> str:
        assert isinstance(transport, FakeTransport)
        if node.name == "n0":
            transport.closed.wait(30)
        return node.name

    pool = FakePool()
    with Fanout(nodes(2), pool, parallel=2) as fan:  # the fan-out itself has no timeout
        first = fan.run(op, timeout=0.3)
        assert isinstance(first["n0"], TransportError) and first["n0"].message == "n0: no result within 0.3s"
        second = fan.run(lambda n, t: n.name)
    assert second["n0"] is first["n0"] and second.succeeded == {"n1": "n1"}
    assert sorted(t.node for t in pool.opened) == ["n0", "n1"]  # n0 was not dialled again


def test_one_connection_per_node_serves_every_phase_then_all_are_closed() -> None:
    pool = FakePool(refuse=["n2"])
    with Fanout(nodes(3), pool, parallel=3) as fan:
        first = fan.run(lambda n, t: id(t))
        second = fan.run(lambda n, t: id(t), only=["n0", "n1", "n2"])
        assert first.succeeded == second.succeeded  # the same transports
        assert [t.node for t in pool.opened] in (["n0", "n1"], ["n1", "n0"])
        assert isinstance(second["n2"], TransportError)  # not tried again
        only = fan.run(lambda n, t: n.name, only={"n1"})
        assert dict(only) == {"n1": "n1"}
        assert not any(t.closed.is_set() for t in pool.opened)
    assert all(t.closed.is_set() for t in pool.opened)


def test_bugs_are_not_swallowed_but_wait_for_the_other_nodes() -> None:
    finished: list[str] = []

    def fn(node: NodeSpec) -> None:
        if node.name == "n0":
            raise KeyError("bug")
        time.sleep(0.05)
        finished.append(node.name)

    with pytest.raises(KeyError):
        parallel_map(nodes(3), fn, parallel=3)
    assert sorted(finished) == ["n1", "n2"]


def test_exec_maps_a_non_zero_exit_to_a_failure_with_its_output() -> None:
    def answer(node: str, argv: Sequence[str]) -> CommandResult:
        code = 3 if node == "n1" else 0
        return CommandResult(tuple(argv), code, f"out {node}".encode(), b"err")

    result = run_everywhere(nodes(2), ["python3", "-V"], FakePool(answer))
    assert result.outcome == "partial"
    failed = result["n1"]
    assert isinstance(failed, CommandFailed) and failed.message == "n1: `python3 -V` exited with 3"
    doc = result.as_json("exec")
    assert doc["nodes"]["n1"] == {
        "ok": False,
        "error": "n1: `python3 -V` exited with 3",
        "hint": None,
        "exit_code": 3,
        "stdout": "out n1",
        "stderr": "err",
    }
    assert doc["nodes"]["n0"] == {"ok": True, "exit_code": 0, "stdout": "out n0", "stderr": "err"}


def test_inventory_check_reads_user_and_kernel() -> None:
    pool = FakePool(lambda node, argv: CommandResult(tuple(argv), 0, b"root\nLinux 6.1\n", b""))
    result = check_nodes(nodes(2), pool)
    assert {n: (r.user, r.kernel) for n, r in result.succeeded.items()} == {
        "n0": ("root", "Linux 6.1"),
        "n1": ("root", "Linux 6.1"),
    }


def test_an_envctl_error_while_closing_does_not_hide_the_result() -> None:
    class Sticky(FakeTransport):
        def close(self) -> None:
            raise EnvctlError("cannot close")

    class StickyPool(FakePool):
        def connect(self, node: NodeSpec) -> Transport:
            return Sticky(node.name, lambda argv: CommandResult(tuple(argv), 0, b"", b""))

    assert on_nodes(nodes(2), StickyPool(), lambda n, t: 1).outcome == "all"
