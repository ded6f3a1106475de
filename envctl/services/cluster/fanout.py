"""The one path for multi-node work: a bounded fan-out over one connection pool.

push, status, gc, rollback, exec and inventory check all run through here. A function runs per
node, at most ``parallel`` nodes at a time, each within ``timeout`` seconds; a node's failure
becomes its entry of the ``GroupResult`` and never stops the others. Connections come from one
``Connector`` (the SSH pool shares each jump host's connection between the nodes behind it); a
node's one connection serves every phase of an operation, and all are closed at the end.

An operation is a function of ``(node, transport)`` returning a value with ``as_json()``::

    with Fanout(nodes, pool, parallel=16, timeout=60) as fan:
        result = fan.run(probe)          # GroupResult: node -> value or EnvctlError
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

from envctl.core.group import GroupResult
from envctl.core.node import NodeSpec
from envctl.core.transport import Connector, Transport
from envctl.errors import EnvctlError, TransportError

T = TypeVar("T")
MAX_PARALLEL = 256


def parallel_map(
    nodes: Sequence[NodeSpec],
    fn: Callable[[NodeSpec], T],
    *,
    parallel: int = 16,
    timeout: float | None = None,
    on_timeout: Callable[[str, EnvctlError], None] | None = None,
) -> GroupResult[T]:
    """Call ``fn(node)`` for every node, at most ``parallel`` at a time, in node order.

    An EnvctlError from one node becomes that node's entry. A node still running after
    ``timeout`` seconds gets a TransportError entry at once and ``on_timeout(name, error)`` is
    called to abort it (close its connection); its slot goes to the next node, and whatever it
    returns later is dropped. Any other exception is a bug: it propagates once every node ended.
    """
    limit = max(1, min(parallel, MAX_PARALLEL))
    pending = deque(nodes)
    running: dict[str, float] = {}  # node -> when it started
    results: dict[str, T | EnvctlError] = {}
    bugs: list[BaseException] = []
    cond = threading.Condition()

    def work(node: NodeSpec) -> None:
        try:
            value: T | EnvctlError = fn(node)
        except EnvctlError as exc:
            value = exc
        except BaseException as exc:  # a bug: reported to the caller, not swallowed
            with cond:
                bugs.append(exc)
                running.pop(node.name, None)
                cond.notify_all()
            return
        with cond:
            if running.pop(node.name, None) is not None:  # else it timed out: its entry is set
                results[node.name] = value
            cond.notify_all()

    while True:
        overdue: list[tuple[str, EnvctlError]] = []
        with cond:
            while pending and len(running) < limit:
                node = pending.popleft()
                running[node.name] = time.monotonic()
                threading.Thread(target=work, args=(node,), name=f"envctl-{node.name}", daemon=True).start()
            if not running:
                break
            if timeout is None:
                cond.wait()
                continue
            now = time.monotonic()
            for name, start in list(running.items()):
                if now - start >= timeout:
                    del running[name]
                    error: EnvctlError = TransportError(
                        name, f"no result within {timeout:g}s", hint="the node or its link is stuck"
                    )
                    results[name] = error
                    overdue.append((name, error))
            if not overdue:
                cond.wait(max(0.01, min(running.values()) + timeout - now))
                continue
        for name, error in overdue:
            if on_timeout is not None:
                on_timeout(name, error)
    if bugs:
        raise bugs[0]
    return GroupResult({node.name: results[node.name] for node in nodes})


class Fanout:
    """Runs operations on ``nodes`` through ``pool``: one connection per node, reused by phases.

    A node whose connection could not be opened, or that timed out, keeps that error for every
    later ``run`` (it is not tried again). ``close`` closes every node's connection; the pool
    itself (and its shared jump connections) is closed by whoever opened it.
    """

    def __init__(
        self,
        nodes: Sequence[NodeSpec],
        pool: Connector,
        *,
        parallel: int = 16,
        timeout: float | None = None,
    ) -> None:
        self.nodes = tuple(nodes)
        self.parallel = parallel
        self.timeout = timeout
        self._pool = pool
        self._lock = threading.Lock()
        self._open: dict[str, Transport] = {}
        self._dead: dict[str, EnvctlError] = {}

    def run(
        self,
        fn: Callable[[NodeSpec, Transport], T],
        only: Collection[str] | None = None,
        parallel: int | None = None,
        timeout: float | None = None,
    ) -> GroupResult[T]:
        """``fn(node, transport)`` on every node (or those named in ``only``), in node order,
        ``parallel`` at once and each within ``timeout`` seconds (default: the fan-out's own)."""
        chosen = [n for n in self.nodes if only is None or n.name in only]
        return parallel_map(
            chosen,
            lambda node: fn(node, self._transport(node)),
            parallel=parallel or self.parallel,
            timeout=timeout if timeout is not None else self.timeout,
            on_timeout=self._abort,
        )

    def _transport(self, node: NodeSpec) -> Transport:
        with self._lock:
            if node.name in self._dead:
                raise self._dead[node.name]
            transport = self._open.get(node.name)
        if transport is not None:
            return transport
        try:
            transport = self._pool.connect(node)
        except EnvctlError as exc:
            with self._lock:
                self._dead.setdefault(node.name, exc)
            raise
        with self._lock:
            error = self._dead.get(node.name)
            if error is None:
                self._open[node.name] = transport
        if error is not None:  # timed out while connecting
            _close_quietly(transport)
            raise error
        return transport

    def _abort(self, name: str, error: EnvctlError) -> None:
        with self._lock:
            self._dead[name] = error
            transport = self._open.pop(name, None)
        if transport is not None:
            _close_quietly(transport)  # unblocks the node's thread: its I/O fails at once

    def close(self) -> None:
        """Close every node connection this fan-out opened."""
        with self._lock:
            transports, self._open = list(self._open.values()), {}
        for transport in transports:
            _close_quietly(transport)

    def __enter__(self) -> Fanout:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def on_nodes(
    nodes: Sequence[NodeSpec],
    pool: Connector,
    fn: Callable[[NodeSpec, Transport], T],
    *,
    parallel: int = 16,
    timeout: float | None = None,
) -> GroupResult[T]:
    """One-phase operations (status, gc, rollback, exec, check): ``fn`` on every node, then close."""
    with Fanout(nodes, pool, parallel=parallel, timeout=timeout) as fan:
        return fan.run(fn)


def _close_quietly(transport: Transport) -> None:
    with contextlib.suppress(EnvctlError, OSError):
        transport.close()
