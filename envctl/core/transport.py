"""The seam between services and nodes: run a command on one node, or stream bytes into one.

Adapters (paramiko over SSH, a local subprocess for tests) implement ``Transport``, and a
``Connector`` opens one per node (the SSH pool shares jump-host connections between them);
services only ever see these Protocols, so they can be tested without a network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from envctl.core.node import NodeSpec


@dataclass(frozen=True)
class CommandResult:
    """What one command on a node returned."""

    argv: tuple[str, ...]
    exit_code: int
    stdout: bytes
    stderr: bytes


class Transport(Protocol):
    """A connection to one node. ``argv`` is always shlex.join'ed, never a raw shell string."""

    node: str

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float | None = None,
        check: bool = True,
    ) -> CommandResult:
        """Run ``argv`` on the node; with ``check`` a non-zero exit raises RemoteError."""
        ...

    def upload(
        self,
        argv: Sequence[str],
        source: BinaryIO,
        *,
        size: int,
        progress: Callable[[int], None] | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        """Stream ``size`` bytes of ``source`` into the stdin of ``argv`` on the node."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class Connector(Protocol):
    """Opens connections to nodes; thread-safe. Each transport is the caller's to close."""

    def connect(self, node: NodeSpec) -> Transport:
        """An authenticated connection to ``node``; raises TransportError naming it."""
        ...
