"""A Transport that runs commands on this machine: the seam services are unit-tested through."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, BinaryIO

from envctl.adapters.commands import check as check_result
from envctl.adapters.commands import describe
from envctl.core.transport import CommandResult, Transport
from envctl.errors import TransportError

CHUNK = 256 * 1024
DEFAULT_TIMEOUT = 3600.0


class LocalTransport:
    """Runs argv with subprocess (never through a shell) and names itself ``node``."""

    def __init__(self, node: str = "local", *, env: dict[str, str] | None = None) -> None:
        self.node = node
        self.env = env

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float | None = None,
        check: bool = True,
    ) -> CommandResult:
        """Run ``argv`` locally; with ``check`` a non-zero exit raises RemoteError."""
        try:
            done = subprocess.run(
                list(argv),
                input=stdin if stdin is not None else b"",
                capture_output=True,
                timeout=timeout or DEFAULT_TIMEOUT,
                env=self.env,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise TransportError(self.node, f"`{describe(argv)}` timed out after {timeout}s") from exc
        except OSError as exc:
            raise TransportError(self.node, f"cannot run `{describe(argv)}`: {exc}") from exc
        result = CommandResult(tuple(argv), done.returncode, done.stdout, done.stderr)
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
        """Stream ``size`` bytes of ``source`` into ``argv``'s stdin; non-zero exit raises."""
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self.env,
            )
        except OSError as exc:
            raise TransportError(self.node, f"cannot run `{describe(argv)}`: {exc}") from exc
        assert proc.stdin and proc.stdout and proc.stderr
        out: list[bytes] = []
        err: list[bytes] = []
        readers = [
            threading.Thread(target=_collect, args=(proc.stdout, out), daemon=True),
            threading.Thread(target=_collect, args=(proc.stderr, err), daemon=True),
        ]
        for reader in readers:
            reader.start()
        sent = 0
        try:
            while sent < size:
                chunk = source.read(min(CHUNK, size - sent))
                if not chunk:
                    raise TransportError(self.node, f"source ended after {sent} of {size} bytes")
                proc.stdin.write(chunk)
                proc.stdin.flush()  # a source that paces itself (a stream of announcements) is seen as it goes
                sent += len(chunk)
                if progress is not None:
                    progress(sent)
            proc.stdin.close()
            code = proc.wait(timeout=timeout or DEFAULT_TIMEOUT)
        except BrokenPipeError:
            code = proc.wait(timeout=timeout or DEFAULT_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            raise TransportError(self.node, f"`{describe(argv)}` timed out") from exc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for reader in readers:
                reader.join(10)
        return check_result(self.node, CommandResult(tuple(argv), code, b"".join(out), b"".join(err)))

    def close(self) -> None:
        """Nothing to release."""


def _collect(stream: IO[bytes], into: list[bytes]) -> None:
    for chunk in iter(lambda: stream.read(CHUNK), b""):
        into.append(chunk)


if TYPE_CHECKING:  # mypy proves the class satisfies the Protocol the services are written against
    _conforms: Transport = LocalTransport()
