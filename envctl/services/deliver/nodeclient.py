"""Talk to the envctl agent on one node over a Transport: install it, call it, stream blobs.

With ``become`` the agent (and its installer) runs through ``sudo -n [-u USER] --`` as one argv,
quoted like every command (never a shell string). Without it, a login user who may not write
the store gets a hint naming the path and the two ways out.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from envctl.core.node import NodeSpec
from envctl.core.transport import CommandResult, Transport
from envctl.errors import AgentError, InputError, RemoteError
from envctl.node.bundle import agent_bundle

# Installs the agent bundle from stdin, checked against its sha256, under a temp name + rename.
# A path it may not write exits 77 (EX_NOPERM) naming the path.
_INSTALL = (
    "import hashlib,os,sys\n"
    "d=sys.stdin.buffer.read()\n"
    "if hashlib.sha256(d).hexdigest()!=sys.argv[2]: sys.exit('agent bundle corrupted in transit')\n"
    "try:\n"
    " os.makedirs(os.path.dirname(sys.argv[1]),exist_ok=True)\n"
    " t=sys.argv[1]+'.%d.tmp'%os.getpid()\n"
    " open(t,'wb').write(d); os.replace(t,sys.argv[1])\n"
    "except PermissionError as e:\n"
    " sys.stderr.write('%s: %s\\n'%(e.filename,e.strerror)); sys.exit(77)\n"
)
_NOPERM = 77
#: what sudo says when it will not run the command without a password or a rule
_SUDO_REFUSED = ("a password is required", "is not allowed to execute", "not in the sudoers file")

# stdlib only: skipping site and PYTHON* variables starts faster and ignores the node's packages
_PY_FLAGS = ("-S", "-E")

_HINTS = {
    "nospace": "free space on the node (its store or prefix root), then re-run: transfers resume",
    "busy": "another envctl operation holds the node's store lock; wait for it, then re-run",
    "corrupt": "re-run: the corrupt blob was discarded and will be sent again",
    "interrupted": "re-run: the transfer resumes where it stopped",
    "hostile": "the image holds an entry that cannot be unpacked safely; rebuild it",
    "missing": "re-run the push: missing or corrupt blobs are sent again",
    "superseded": "a newer push or rollback of this environment won; check `envctl status`",
    "state": "the node's state file named in the message is damaged: move it aside, then re-run",
    "tls": "give the CA that signed the registry's certificate with --registry-ca FILE (or the "
    "inventory's registry_ca); envctl hands it to the node's pull in memory",
    "login": "fix the node's docker login named in the message (docker login REGISTRY as the SSH user), "
    "or push with --registry-auth sender",
}
SUDOERS_EXAMPLE = "{user} ALL=(root) NOPASSWD: /usr/bin/python3 -S -E *"


@dataclass(frozen=True)
class Missing:
    """A blob a node lacks, and how many bytes of it the node kept from an earlier try."""

    digest: str
    size: int
    offset: int
    path: Path


class FrameStream(io.RawIOBase):
    """The ``receive`` stream: ``blob DIGEST SIZE OFFSET\\n`` + bytes per blob, then ``end\\n``.

    Counts payload bytes as the transport reads them, whatever the transport does with progress.
    """

    def __init__(self, blobs: Sequence[Missing], on_bytes: Callable[[int], None]) -> None:
        self._parts: list[tuple[bytes, Missing | None]] = []
        for b in blobs:
            self._parts.append((f"blob {b.digest} {b.size} {b.offset}\n".encode(), b))
        self._parts.append((b"end\n", None))
        self.size = sum(len(h) + (b.size - b.offset if b else 0) for h, b in self._parts)
        self._on_bytes = on_bytes
        self._pending = b""
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._left = 0

    def readable(self) -> bool:
        """Always readable."""
        return True

    def readinto(self, buf: Any) -> int:
        """Fill ``buf`` with the next piece of the stream."""
        view = memoryview(buf)
        while True:
            if self._pending:
                n = min(len(view), len(self._pending))
                view[:n] = self._pending[:n]
                self._pending = self._pending[n:]
                return n
            if self._file is not None and self._left > 0:
                data = self._file.read(min(len(view), self._left, 1 << 20))
                if not data:
                    raise InputError(f"{self._path}: the image's blob shrank while being sent")
                self._left -= len(data)
                view[: len(data)] = data
                self._on_bytes(len(data))
                return len(data)
            if self._file is not None:
                self._file.close()
                self._file = None
            if not self._parts:
                return 0
            header, blob = self._parts.pop(0)
            self._pending = header
            if blob is not None:
                self._file, self._path = blob.path.open("rb"), blob.path
                self._file.seek(blob.offset)
                self._left = blob.size - blob.offset

    def close(self) -> None:
        """Close the blob being sent, if any."""
        if self._file is not None:
            self._file.close()
        super().close()


class NodeClient:
    """One node's agent, reached over ``transport``."""

    def __init__(
        self,
        transport: Transport,
        spec: NodeSpec,
        *,
        by: str = "unknown",
        lock_timeout: float = 600.0,
        idle_timeout: float = 60.0,
    ) -> None:
        self.transport, self.spec, self.by = transport, spec, by
        self.lock_timeout, self.idle_timeout = lock_timeout, idle_timeout
        self._agent = f"{spec.store}/agent/{agent_bundle().filename}"

    @property
    def node(self) -> str:
        """The node's name."""
        return self.spec.name

    def _sudo(self) -> list[str]:
        """``sudo -n [-u USER] --`` when the node says ``become``; else nothing."""
        if not self.spec.become:
            return []
        user = [] if self.spec.become_user == "root" else ["-u", self.spec.become_user]
        return ["sudo", "-n", *user, "--"]

    def _argv(self, command: str, args: Sequence[str], runtime: str | None) -> list[str]:
        t = self.spec
        argv = [*self._sudo(), t.python, *_PY_FLAGS, self._agent]
        argv += ["--store", t.store, "--prefix-root", t.prefix_root]
        argv += ["--runtime", runtime or t.runtime, "--by", self.by, "--soft"]
        argv += ["--lock-timeout", str(self.lock_timeout), "--idle-timeout", str(self.idle_timeout)]
        if t.docker_host:
            argv += ["--docker-host", t.docker_host]
        for flag, value in (
            ("--max-entries", t.unpack_max_entries),
            ("--max-bytes", t.unpack_max_bytes),
            ("--max-depth", t.unpack_max_depth),
        ):
            if value is not None:
                argv += [flag, str(value)]
        # sudo, then the shape envctl bootstrap's narrow rule allows: this agent, store and prefix root
        return [*argv, command, *args]

    def _install(self) -> None:
        bundle = agent_bundle()
        # through sudo this needs a rule that allows an installer; envctl bootstrap's narrow rule
        # names one agent only, and a refusal then says to bootstrap again (see _check_launch)
        argv = [*self._sudo(), self.spec.python, *_PY_FLAGS, "-c", _INSTALL, self._agent, bundle.sha256]
        result = self.transport.run(argv, stdin=bundle.data, check=False)
        self._check_launch(result)
        if result.exit_code != 0:
            raise RemoteError(
                self.node,
                f"cannot install the envctl agent under {self.spec.store}/agent: "
                + _last_line(result.stderr),
                hint=self._permission_hint() if result.exit_code == _NOPERM else None,
            )

    def _permission_hint(self) -> str:
        """The two ways out for a user who may not write the store or the prefix root."""
        t = self.spec
        who = t.become_user if t.become else t.user
        if t.become:
            return (
                f"{who} (through sudo) may not write there: set become_user to a user who may, "
                "or point `store` and `prefix_root` at directories it can write"
            )
        return (
            f"{who} may not write there: set `become = true` for the node (the agent then runs "
            f"under `sudo -n`), or point `store` and `prefix_root` at directories {who} can write "
            f"(now {t.store} and {t.prefix_root})"
        )

    def _check_launch(self, result: CommandResult) -> None:
        """sudo or python3 could not start the agent: say which, and what to do."""
        if result.exit_code == 0:
            return
        said = _last_line(result.stderr)
        if self.spec.become:
            if any(words in said for words in _SUDO_REFUSED):
                rule = SUDOERS_EXAMPLE.format(user=self.spec.user)
                raise RemoteError(
                    self.node,
                    f"sudo -n refused to run the envctl agent as {self.spec.become_user} "
                    f"for {self.spec.user}: {said}",
                    hint="run `envctl bootstrap -i INVENTORY --user USER` with this envctl (it installs "
                    "this agent and a sudo rule for it alone), or allow it without a password in "
                    f"/etc/sudoers.d, e.g. `{rule}`; or drop `become` and point `store` and "
                    "`prefix_root` at writable directories",
                )
            if result.exit_code == 127 and "sudo" in said:  # the login shell found no sudo
                raise RemoteError(
                    self.node,
                    "sudo not found on the node (it has `become = true`)",
                    hint="install sudo there, or drop `become` and point `store` and `prefix_root` "
                    "at directories the login user can write",
                )
        if result.exit_code == 127 or (said.startswith("sudo:") and "command not found" in said):
            raise RemoteError(
                self.node,
                f"{self.spec.python} not found on the node",
                hint="envctl's node agent needs python3 (>= 3.7) on every node; install it",
            )

    def _parse(self, result: CommandResult) -> dict[str, Any]:
        self._check_launch(result)
        try:
            doc = json.loads(result.stdout.decode("utf-8").strip().splitlines()[-1])
        except (ValueError, IndexError, RecursionError):
            raise RemoteError(
                self.node,
                f"the envctl agent failed (exit {result.exit_code}): {_last_line(result.stderr)}",
            ) from None
        if not isinstance(doc, dict):
            raise RemoteError(self.node, "the envctl agent returned no JSON object")
        if "error" in doc:
            kind = str(doc.get("kind", "failed"))
            hint = self._permission_hint() if kind == "permission" else _HINTS.get(kind)
            error = AgentError(self.node, str(doc["error"]), kind, hint)
            if isinstance(doc.get("holder"), dict):  # who superseded this step (envctl.node.epochs)
                error.details["holder"] = doc["holder"]
            raise error
        return doc

    def call(
        self, command: str, *args: str, stdin: bytes | None = None, runtime: str | None = None
    ) -> dict[str, Any]:
        """Run one agent subcommand; installs the agent on first use. Raises AgentError."""
        argv = self._argv(command, args, runtime)
        result = self.transport.run(argv, stdin=stdin, check=False)
        missing = result.exit_code == 2 and b"can't open file" in result.stderr
        if missing or (self.spec.become and result.exit_code == 1 and b"sudo:" in result.stderr):
            self._install()
            result = self.transport.run(argv, stdin=stdin, check=False)
        return self._parse(result)

    def have(self, digests: Sequence[str]) -> tuple[set[str], dict[str, int]]:
        """Which blobs the node holds (verified), and partial byte counts of the others."""
        # on stdin: the digests of an image with thousands of layers overflow a command line
        doc = self.call("have", "--stdin", stdin="".join(f"{d}\n" for d in digests).encode())
        return set(doc["present"]), {k: int(v) for k, v in doc["partial"].items()}

    def receive(self, blobs: Sequence[Missing], on_bytes: Callable[[int], None]) -> dict[str, Any]:
        """Stream the missing blobs in one channel; the agent verifies each before storing it."""
        stream = FrameStream(blobs, on_bytes)
        argv = self._argv("receive", (), None)
        try:
            result = self.transport.upload(argv, stream, size=stream.size)  # type: ignore[arg-type]
        finally:
            stream.close()
        return self._parse(result)

    def stream(
        self, command: str, source: BinaryIO, size: int, timeout: float | None = None
    ) -> dict[str, Any]:
        """Run an agent subcommand with ``size`` bytes of ``source`` on its stdin (the relay's
        ``serve`` holds its stdin open for the push's lifetime: ``source`` blocks meanwhile)."""
        result = self.transport.upload(self._argv(command, (), None), source, size=size, timeout=timeout)
        return self._parse(result)


def _last_line(data: bytes) -> str:
    lines = data.decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else "(no output)"
