"""The one exception root of envctl.

    EnvctlError                 message + hint; the CLI prints both, exit 2 unless said otherwise
    ├── InputError              a user file or option is malformed (profile, inventory, lock, flag)
    ├── MatrixError             compat_matrix/ data is malformed or inconsistent
    ├── UnsatisfiableError      the solver found no stack; carries the explanation (exit 1)
    ├── LockError               resolving or checking a lock failed; a bad lockfile (exit 2)
    │   ├── ResolveError        uv/rattler found no answer or could not reach a source (exit 1)
    │   └── LockCheckError      the resolved lock disagrees with the solution (exit 1)
    ├── BuildError              bad build input: hash mismatch, missing base, wrong Python (exit 2)
    │   └── BuildFailure        a download, the Docker engine or debootstrap failed (exit 1)
    ├── TransportError          a node could not be reached or talked to (names the node)
    ├── RemoteError             a command on a node failed (names the node)
    └── SandboxError            creating or removing the local sandbox cluster failed (exit 1)

Library exceptions (paramiko, docker, subprocess, OSError) are translated into these at the
adapter edge and re-raised ``from`` the original, so the cause survives for ``--debug``.
"""

from __future__ import annotations


class EnvctlError(Exception):
    """Base of every error envctl reports to a user: one line of message, one line of hint."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

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


class TransportError(EnvctlError):
    """A node could not be reached, authenticated or talked to."""

    def __init__(self, node: str, message: str, hint: str | None = None) -> None:
        super().__init__(f"{node}: {message}", hint)
        self.node = node


class RemoteError(EnvctlError):
    """A command on a node failed."""

    def __init__(self, node: str, message: str, hint: str | None = None) -> None:
        super().__init__(f"{node}: {message}", hint)
        self.node = node


class SandboxError(EnvctlError):
    """Creating, inspecting or removing the local sandbox cluster failed."""

    exit_code = 1
