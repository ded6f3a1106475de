"""The one exception root of envctl.

    EnvctlError                 message + hint; exit 2 (bad input) unless the class says 1
    ├── InputError              a user file or option is malformed (profile, inventory, lock, flag)
    ├── MatrixError             compat_matrix/ data is malformed or inconsistent
    ├── UnsatisfiableError      the solver found no stack; carries the explanation (exit 1)
    ├── LockError               a lockfile is malformed or cannot be used
    │   ├── ResolveError        uv/rattler found no answer or could not reach a source (exit 1)
    │   └── LockCheckError      the resolved lock disagrees with the solution (exit 1)
    ├── BuildError              bad build input: hash mismatch, missing base, wrong Python
    │   └── BuildFailure        a download, the Docker engine or debootstrap failed (exit 1)
    │       └── PartialRefused  [adapters.blob_cache] a server will not go on from a kept download
    ├── RemoteSourceError       something envctl talks to failed; names it (exit 1)
    │   ├── TransportError      a node or an index could not be reached or talked to
    │   │   └── NotFoundError   the index answered 404 for a URL
    │   └── RemoteError         a command on a node failed
    │       ├── AgentError      the envctl agent on a node reported a failure (``kind`` says which)
    │       └── CommandFailed   [services.cluster.reach] ``exec``'s command exited non-zero there
    ├── NotDelivered            [core.delivery] a node of a push or rollback lacks the digest (exit 1)
    ├── NotVerified             [core.verification] a node's environment failed its smoke check (exit 1)
    ├── PreflightRefused        [services.deliver.preflight] a node cannot run the image (exit 1)
    ├── LedgerError             the local ledger of operations cannot be opened or written (exit 1)
    └── SandboxError            creating or removing the local sandbox cluster failed (exit 1)

A class in [brackets] lives in that module: it is a per-node entry of a multi-node result, with
fields of its own. ``details`` gives what an error knows beyond message and hint, for the JSON
error document (docs/json.md) and per-node entries.

The exit status follows one rule: 0 the request was met; 1 it cannot be met (unsatisfiable, a
stale lock, drift, a failed node) or a remote source failed; 2 bad input, usage errors included.
Library exceptions (paramiko, docker, subprocess, OSError) are translated into these at the
adapter edge and re-raised ``from`` the original, so the cause survives for ``--debug``.
"""

from __future__ import annotations

from typing import Any

#: the longest message or hint kept: values are cut where they are echoed (core.shown); this
#: catches any that was not, so a 1 KB input can never print a 500 MB line
MAX_MESSAGE = 2000


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else f"{text[: MAX_MESSAGE - 20]}... ({len(text)} chars)"


class EnvctlError(Exception):
    """Base of every error envctl reports to a user: one line of message, one line of hint."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        message, hint = _bounded(message), None if hint is None else _bounded(hint)
        super().__init__(message)
        self.message = message
        self.hint = hint
        #: JSON-ready facts beyond message and hint, for error documents and per-node entries
        self.details: dict[str, Any] = {}

    def __str__(self) -> str:
        return self.message


class InputError(EnvctlError):
    """A user-supplied file or option is malformed; the message names file and key."""


class MatrixError(EnvctlError):
    """The compatibility matrix is malformed or inconsistent."""


class UnsatisfiableError(EnvctlError):
    """No stack satisfies the profile; ``explanation`` says which requirements conflict."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, explanation: object = None) -> None:
        super().__init__(message, hint)
        self.explanation = explanation
        to_dict = getattr(explanation, "to_dict", None)
        if callable(to_dict):
            self.details = {"explanation": to_dict()}


class LockError(EnvctlError):
    """Resolving, checking or reading a lock failed."""


class ResolveError(LockError):
    """A resolver found no answer, or could not reach an index or channel."""

    exit_code = 1


class LockCheckError(LockError):
    """A resolved lock disagrees with the solution (CUDA minors, cuDNN, glibc, wrong build)."""

    exit_code = 1


class BuildError(EnvctlError):
    """Assembling or loading an image failed."""


class BuildFailure(BuildError):
    """The build's input was fine but a download, the engine or a tool failed."""

    exit_code = 1


class RemoteSourceError(EnvctlError):
    """Something envctl talks to (a node, a package index) failed; ``source`` names it."""

    exit_code = 1

    def __init__(self, source: str, message: str, hint: str | None = None) -> None:
        super().__init__(f"{source}: {message}", hint)
        self.source = source


class TransportError(RemoteSourceError):
    """A node or an index could not be reached, authenticated or talked to."""

    @property
    def node(self) -> str:
        """The node (or URL) that could not be reached."""
        return self.source


class NotFoundError(TransportError):
    """The index answered 404 for this URL."""


class RemoteError(RemoteSourceError):
    """A command on a node failed."""

    @property
    def node(self) -> str:
        """The node the command ran on."""
        return self.source


class AgentError(RemoteError):
    """The node agent reported a failure; ``kind`` says which (nospace, corrupt, busy, ...)."""

    def __init__(self, node: str, message: str, kind: str, hint: str | None = None) -> None:
        super().__init__(node, message, hint)
        self.kind = kind
        self.details = {"agent_error": kind}


class LedgerError(EnvctlError):
    """The local ledger (``$ENVCTL_STATE_DIR/ledger.db``) cannot be opened or written."""

    exit_code = 1


class SandboxError(EnvctlError):
    """Creating, inspecting or removing the local sandbox cluster failed."""

    exit_code = 1
