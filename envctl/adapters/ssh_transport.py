"""Commands over one open SSH connection: quoted argv, streamed stdin, bounded waits.

``SSHTransport`` implements ``envctl.core.transport.Transport``; ``envctl.adapters.ssh.connect``
opens one. Every paramiko and socket error is translated into a TransportError naming the node.
"""

from __future__ import annotations

import contextlib
import select
import shlex
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from envctl.adapters.commands import check as check_result
from envctl.adapters.commands import describe
from envctl.core.node import NodeSpec
from envctl.core.transport import CommandResult, Transport
from envctl.errors import TransportError

if TYPE_CHECKING:
    import paramiko

    from envctl.adapters.ssh_proxy import ProxyProcess

CHUNK = 256 * 1024
IO_TIMEOUT_S = 60.0  # no byte may wait longer than this on a live connection
COMMAND_TIMEOUT_S = 3600.0  # a command without its own timeout


class SSHTransport:
    """An authenticated connection to one node; implements ``envctl.core.transport.Transport``."""

    def __init__(
        self,
        node: str,
        client: paramiko.SSHClient,
        owned_jump: SSHTransport | None = None,
        *,
        io_timeout: float = IO_TIMEOUT_S,
        proxy: ProxyProcess | None = None,
    ) -> None:
        self.node = node
        self._client = client
        self._owned_jump = owned_jump
        self._proxy = proxy  # the ProxyCommand carrying this connection, ended with it
        self.io_timeout = io_timeout

    def tunnel(self, target: NodeSpec, timeout: float) -> Any:
        """A ``direct-tcpip`` channel from this node to ``target``'s sshd (for jump hosts)."""
        import paramiko

        transport = self._client.get_transport()
        try:
            if transport is None or not transport.is_active():
                raise EOFError("connection closed")
            return transport.open_channel(
                "direct-tcpip", (target.host, target.port), ("127.0.0.1", 0), timeout=timeout
            )
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TransportError(
                target.name,
                f"cannot reach {target.host}:{target.port} through jump host {self.node}: {exc}",
            ) from exc

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float | None = None,
        check: bool = True,
    ) -> CommandResult:
        """Run ``argv`` (quoted with shlex.join) on the node, feeding ``stdin`` if given."""

        def feed(chan: paramiko.Channel) -> None:
            if stdin:
                chan.sendall(stdin)

        result = self._exec(argv, feed, timeout)
        return check_result(self.node, result) if check else result

    def upload(
        self,
        argv: Sequence[str],
        source: BinaryIO,
        *,
        size: int,
        progress: Callable[[int], None] | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        """Stream exactly ``size`` bytes of ``source`` into ``argv``'s stdin; failure raises."""

        def feed(chan: paramiko.Channel) -> None:
            sent = 0
            while sent < size:
                chunk = source.read(min(CHUNK, size - sent))
                if not chunk:
                    raise TransportError(self.node, f"source ended after {sent} of {size} bytes")
                chan.sendall(chunk)
                sent += len(chunk)
                if progress is not None:
                    progress(sent)

        return check_result(self.node, self._exec(argv, feed, timeout))

    def _exec(
        self, argv: Sequence[str], feed: Callable[[paramiko.Channel], None], timeout: float | None
    ) -> CommandResult:
        import paramiko

        command = shlex.join(argv)
        shown = describe(argv)
        limit = timeout or COMMAND_TIMEOUT_S
        deadline = time.monotonic() + limit
        transport = self._client.get_transport()
        try:
            if transport is None or not transport.is_active():
                raise EOFError("connection closed")
            chan = transport.open_session(timeout=self.io_timeout)
            chan.settimeout(self.io_timeout)
            chan.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TransportError(self.node, f"cannot start `{shown}`: {exc}") from exc
        out, err = bytearray(), bytearray()
        drain = threading.Thread(target=_drain, args=(chan, out, err, deadline), daemon=True)
        drain.start()
        try:
            feed(chan)
            chan.shutdown_write()
            drain.join(max(0.0, deadline - time.monotonic()) + 1.0)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            if chan.exit_status_ready() and transport.is_active():
                # the command stopped reading its stdin: report its own exit status instead
                drain.join(self.io_timeout)
            else:
                _close_quietly(chan)
                reason = str(exc) or type(exc).__name__
                raise TransportError(self.node, f"connection lost during `{shown}`: {reason}") from exc
        finally:
            if drain.is_alive():
                _close_quietly(chan)
                drain.join(5.0)
        if not chan.exit_status_ready():
            _close_quietly(chan)
            if transport.is_active() and time.monotonic() >= deadline:
                raise TransportError(self.node, f"`{shown}` timed out after {limit:g}s")
            raise TransportError(self.node, f"connection lost during `{shown}`")
        code = chan.recv_exit_status()
        _close_quietly(chan)
        if code == -1 and not transport.is_active():
            raise TransportError(self.node, f"connection lost during `{shown}`")
        return CommandResult(tuple(argv), code, bytes(out), bytes(err))

    def is_active(self) -> bool:
        """Whether the connection is still up."""
        transport = self._client.get_transport()
        return transport is not None and transport.is_active()

    def close(self) -> None:
        """Close the connection (and the jump connection or ProxyCommand it opened)."""
        with contextlib.suppress(Exception):  # closing a dead connection must not raise
            self._client.close()
        if self._proxy is not None:
            self._proxy.close()
        if self._owned_jump is not None:
            self._owned_jump.close()

    def __enter__(self) -> SSHTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _close_quietly(chan: paramiko.Channel) -> None:
    """Close a channel whose connection may already be dead (paramiko raises EOFError then)."""
    with contextlib.suppress(Exception):
        chan.close()


def _drain(chan: paramiko.Channel, out: bytearray, err: bytearray, deadline: float) -> None:
    """Collect stdout and stderr until the command's exit status arrives (or the deadline)."""
    while time.monotonic() < deadline:
        moved = False
        while chan.recv_ready():
            out += chan.recv(CHUNK)
            moved = True
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(CHUNK)
            moved = True
        pending = chan.recv_ready() or chan.recv_stderr_ready()
        if chan.exit_status_ready() and not pending and (chan.eof_received or chan.closed):
            return
        if chan.closed and not moved:
            return
        if not moved:
            # readable means data, EOF or close; after EOF wait on the exit status instead
            ready, _, _ = select.select([chan], [], [], 0.5)
            if ready and not (chan.recv_ready() or chan.recv_stderr_ready()):
                chan.status_event.wait(0.1)


if TYPE_CHECKING:  # mypy proves the class satisfies the Protocol the services are written against

    def _conforms(transport: SSHTransport) -> Transport:
        return transport
