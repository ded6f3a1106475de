import threading
import time

import pytest

from envctl.core.group import GroupResult
from envctl.core.node import NodeSpec
from envctl.errors import TransportError
from envctl.services.cluster.fanout import parallel_map


def nodes(count: int) -> list[NodeSpec]:
    return [NodeSpec(name=f"n{i}", host=f"h{i}") for i in range(count)]


def test_outcome_all_partial_none() -> None:
    err = TransportError("b", "down")
    assert GroupResult({"a": 1, "b": 2}).outcome == "all"
    mixed = GroupResult({"a": 1, "b": err})
    assert (mixed.outcome, mixed.succeeded, mixed.failed) == ("partial", {"a": 1}, {"b": err})
    assert GroupResult({"b": err}).outcome == "none"
    assert list(mixed) == ["a", "b"] and len(mixed) == 2


def test_parallel_map_keeps_order_maps_errors_and_bounds_concurrency() -> None:
    running, peak = 0, 0
    lock = threading.Lock()

    def fn(node: NodeSpec) -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        if node.name == "n3":
            raise TransportError(node.name, "unreachable")
        return node.host

    result = parallel_map(nodes(8), fn, parallel=3)
    assert list(result) == [f"n{i}" for i in range(8)]
    assert result["n2"] == "h2" and isinstance(result["n3"], TransportError)
    assert result.outcome == "partial" and peak <= 3


def test_bugs_are_not_swallowed() -> None:
    def fn(node: NodeSpec) -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        parallel_map(nodes(2), fn)
