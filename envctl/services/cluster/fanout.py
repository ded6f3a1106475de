"""Run one function per node on a bounded thread pool and collect a per-node result map."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from envctl.core.group import GroupResult
from envctl.core.node import NodeSpec
from envctl.errors import EnvctlError

T = TypeVar("T")
MAX_PARALLEL = 256


def parallel_map(
    nodes: Sequence[NodeSpec], fn: Callable[[NodeSpec], T], *, parallel: int = 16
) -> GroupResult[T]:
    """Call ``fn(node)`` for every node, at most ``parallel`` at a time.

    An EnvctlError from one node becomes that node's entry; any other exception is a bug and
    propagates (after the running calls finish).
    """

    def one(node: NodeSpec) -> T | EnvctlError:
        try:
            return fn(node)
        except EnvctlError as exc:
            return exc

    workers = max(1, min(parallel, MAX_PARALLEL, len(nodes) or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="envctl-node") as pool:
        results = list(pool.map(one, nodes))
    return GroupResult({node.name: result for node, result in zip(nodes, results, strict=True)})
