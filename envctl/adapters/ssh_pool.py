"""Connections to many nodes at once: nodes behind one jump host share one connection to it.

Without sharing, 64 nodes behind ``login1`` would open 64 SSH logins to ``login1`` at once and
trip its sshd's MaxStartups; with it, each node is one ``direct-tcpip`` channel of one login.
Chains (``ProxyJump a,b``) share each hop. A node with ``connection = "local"`` is this machine:
its transport runs commands here (``envctl.adapters.local``), without SSH.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from envctl.adapters.local import LocalTransport
from envctl.adapters.ssh import connect
from envctl.adapters.ssh_transport import IO_TIMEOUT_S, SSHTransport
from envctl.core.node import NodeSpec
from envctl.errors import TransportError

if TYPE_CHECKING:
    from envctl.core.transport import Connector


class SSHPool:
    """Opens node connections with shared jump connections; ``close`` closes the jumps.

    The ``Connector`` every multi-node command uses (through ``envctl.services.cluster.fanout``).
    Thread-safe: ``connect`` may be called from many threads. Each node's own transport is the
    caller's to close; closing it leaves the shared jump connection open for the others. A jump
    host that cannot be reached is tried once per pool: the nodes behind it fail at once.
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
        self._jump_errors: dict[NodeSpec, TransportError] = {}

    def connect(self, node: NodeSpec) -> SSHTransport | LocalTransport:
        """An authenticated connection to ``node`` (its jump host's connection is shared)."""
        if node.connection == "local":
            return LocalTransport(node.name)
        return self._ssh(node)

    def _ssh(self, node: NodeSpec) -> SSHTransport:
        jump = None
        if node.jump is not None and node.proxy_command is None:
            try:
                jump = self._jump(node.jump)
            except TransportError as exc:  # name the node the user asked for, then its jump host
                raise TransportError(node.name, f"through jump host {exc.message}", exc.hint) from exc
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
            if spec in self._jump_errors:
                raise self._jump_errors[spec]
            transport = self._jumps.get(spec)
            if transport is None or not transport.is_active():
                try:
                    transport = self._ssh(spec)
                except TransportError as exc:
                    self._jump_errors[spec] = exc
                    raise
                with self._lock:
                    self._jumps[spec] = transport
            return transport

    @property
    def jump_connections(self) -> int:
        """How many jump-host connections are open."""
        with self._lock:
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


if TYPE_CHECKING:  # mypy proves the pool satisfies the Protocol the fan-out is written against
    _conforms: Connector = SSHPool()
