"""Connections to many nodes at once: nodes behind one jump host share one connection to it.

Without sharing, 64 nodes behind ``login1`` would open 64 SSH logins to ``login1`` at once and
trip its sshd's MaxStartups; with it, each node is one ``direct-tcpip`` channel of one login.
"""

from __future__ import annotations

import threading

from envctl.adapters.ssh import IO_TIMEOUT_S, SSHTransport, connect
from envctl.core.inventory import NodeSpec


class SSHPool:
    """Opens node connections with shared jump connections; ``close`` closes the jumps.

    Thread-safe: ``connect`` may be called from many threads. Each node's own transport is the
    caller's to close; closing it leaves the shared jump connection open for the others.
    """

    def __init__(
        self,
        *,
        accept_new_host_keys: bool = False,
        connect_timeout: float | None = None,
        io_timeout: float = IO_TIMEOUT_S,
    ) -> None:
        self.accept_new_host_keys = accept_new_host_keys
        self.connect_timeout = connect_timeout
        self.io_timeout = io_timeout
        self._lock = threading.Lock()
        self._jump_locks: dict[NodeSpec, threading.Lock] = {}
        self._jumps: dict[NodeSpec, SSHTransport] = {}

    def connect(self, node: NodeSpec) -> SSHTransport:
        """An authenticated connection to ``node`` (its jump host's connection is shared)."""
        jump = self._jump(node.jump) if node.jump is not None else None
        return connect(
            node,
            accept_new_host_keys=self.accept_new_host_keys,
            connect_timeout=self.connect_timeout,
            jump=jump,
            io_timeout=self.io_timeout,
        )

    def _jump(self, spec: NodeSpec) -> SSHTransport:
        with self._lock:
            lock = self._jump_locks.setdefault(spec, threading.Lock())
        with lock:
            transport = self._jumps.get(spec)
            if transport is None or not transport.is_active():
                transport = self._jumps[spec] = self.connect(spec)
            return transport

    @property
    def jump_connections(self) -> int:
        """How many jump-host connections are open."""
        return sum(1 for t in self._jumps.values() if t.is_active())

    def close(self) -> None:
        """Close every shared jump connection."""
        with self._lock:
            jumps, self._jumps = list(self._jumps.values()), {}
        for transport in jumps:
            transport.close()

    def __enter__(self) -> SSHPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
