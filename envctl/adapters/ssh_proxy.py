"""OpenSSH's ProxyCommand: a local command that carries the SSH connection on its stdin/stdout.

Run as OpenSSH runs it (``sh -c 'exec COMMAND'``, tokens expanded by
``envctl.core.ssh_options.expand_proxy_command``), with its stdin and stdout on one end of a
socket pair; paramiko gets the other end, a real socket. Unlike ``paramiko.ProxyCommand``
(pipes), a command that exits is an end of file at once, not a spin until the banner timeout,
and timeouts behave as on TCP. What the command says on stderr is kept (the last lines), so a
failure can say why.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
from typing import IO

from envctl.core.node import NodeSpec
from envctl.core.ssh_options import expand_proxy_command
from envctl.errors import TransportError

SHELL = "/bin/sh"
STDERR_KEEP = 4096  # bytes of the command's stderr kept for messages


class ProxyProcess:
    """A running ProxyCommand; ``sock`` is paramiko's end of it. ``close`` ends the command."""

    def __init__(self, node: NodeSpec, timeout: float) -> None:
        assert node.proxy_command is not None
        self.node = node.name
        self.command = expand_proxy_command(
            node.proxy_command, host=node.host, port=node.port, user=node.user, name=node.name
        )
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [SHELL, "-c", f"exec {self.command}"],
                stdin=theirs.fileno(),
                stdout=theirs.fileno(),
                stderr=subprocess.PIPE,
                start_new_session=True,  # a Ctrl-C meant for envctl is not the command's
            )
        except OSError as exc:
            ours.close()
            raise TransportError(node.name, f"cannot start ProxyCommand `{self.command}`: {exc}") from exc
        finally:
            theirs.close()
        ours.settimeout(timeout)
        self.sock = ours
        self._stderr = bytearray()
        assert self.process.stderr is not None
        self._reader = threading.Thread(target=self._collect, args=(self.process.stderr,), daemon=True)
        self._reader.start()

    def _collect(self, stream: IO[bytes]) -> None:
        for chunk in iter(lambda: os.read(stream.fileno(), 1024), b""):
            self._stderr += chunk
            del self._stderr[:-STDERR_KEEP]

    def why(self) -> str:
        """How the command ended (its exit status and last stderr line), or that it runs."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(1.0)
        self._reader.join(1.0)
        lines = [ln for ln in self._stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        said = f": {lines[-1][:300]}" if lines else ""
        code = self.process.poll()
        state = "still runs" if code is None else f"exited with {code}"
        return f"ProxyCommand `{self.command}` {state}{said}"

    def close(self) -> None:
        """Close paramiko's end and end the command (it gets EOF, then SIGTERM)."""
        with contextlib.suppress(OSError):
            self.sock.close()
        try:
            self.process.wait(2.0)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                self.process.wait(2.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
