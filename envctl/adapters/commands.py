"""What every transport does with a finished command: describe it and judge its exit status."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from envctl.core.transport import CommandResult
from envctl.errors import RemoteError

MAX_SHOWN = 160


def describe(argv: Sequence[str]) -> str:
    """The command as a shell would see it, shortened for one-line messages."""
    text = shlex.join(argv)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def last_line(data: bytes) -> str:
    """The last non-empty line of a command's output, for error messages."""
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output on stderr)"


def check(node: str, result: CommandResult) -> CommandResult:
    """Return ``result``, or raise RemoteError naming node, command and stderr's last line."""
    if result.exit_code == 0:
        return result
    status = "was killed" if result.exit_code < 0 else f"exited with {result.exit_code}"
    raise RemoteError(
        node,
        f"`{describe(result.argv)}` {status}: {last_line(result.stderr)}",
        hint="run the command on the node by hand to see its full output",
    )
