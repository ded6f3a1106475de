"""Host keys: checked against the node's known_hosts file and the global ones (OpenSSH's
GlobalKnownHostsFile, /etc/ssh/ssh_known_hosts by default); unknown keys only on request.

An unknown key is refused unless the caller explicitly accepts new keys (then it is recorded in
the node's own known_hosts file, under a file lock, since parallel connects may accept keys at the
same time); a changed key is always refused, by paramiko, and reported by ``envctl.adapters.ssh``.
paramiko skips ``@revoked`` and ``@cert-authority`` lines: a revoked key is refused here, and
an unknown key's error says that host certificates are not checked.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envctl.core.node import NodeSpec
from envctl.errors import TransportError

if TYPE_CHECKING:
    import paramiko


def fingerprint(key: paramiko.PKey) -> str:
    """``ssh-ed25519 SHA256:...`` as OpenSSH shows a key."""
    return f"{key.get_name()} {key.fingerprint}"


def record_host_key(known_hosts: Path, hostname: str, key: paramiko.PKey) -> None:
    """Append ``hostname``'s key to ``known_hosts`` (created 0600), under a file lock."""
    known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
    fd = os.open(known_hosts, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "r+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # parallel connects may accept keys at the same time
        fh.seek(0)
        if line not in fh.read():
            fh.write(line)


def known_host_files(node: NodeSpec) -> list[Path]:
    """The host key files of ``node`` that exist: its own known_hosts, then the global ones."""
    paths = [Path(os.path.expanduser(p)) for p in (node.known_hosts, *node.global_known_hosts)]
    return [p for p in dict.fromkeys(paths) if p.is_file()]


def _marked(files: list[Path], marker: str) -> list[list[str]]:
    """The fields after ``marker`` of every ``@marker`` line of ``files``."""
    lines = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        lines += [ln.split()[1:] for ln in text.splitlines() if ln.strip().startswith(marker + " ")]
    return lines


def check_not_revoked(node: str, files: list[Path], key: paramiko.PKey) -> None:
    """Refuse ``key`` if a ``@revoked`` line of ``files`` lists it (whatever its host names)."""
    for fields in _marked(files, "@revoked"):
        if len(fields) >= 3 and fields[1] == key.get_name() and fields[2] == key.get_base64():
            raise TransportError(
                node, f"host key {fingerprint(key)} is marked @revoked in the known_hosts files"
            )


def host_key_policy(
    node: str, known_hosts: Path, accept_new: bool, read: list[Path] | None = None
) -> paramiko.MissingHostKeyPolicy:
    """Refuse keys not in the known_hosts files (naming ``node``), or record them in
    ``known_hosts`` with ``accept_new``; ``read`` are all the files checked."""
    import paramiko

    files = read if read is not None else [known_hosts]

    class Policy(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client: Any, hostname: str, key: paramiko.PKey) -> None:
            check_not_revoked(node, files, key)
            if not accept_new:
                where = ", ".join(str(p) for p in files) or f"{known_hosts}, which does not exist"
                hint = (
                    "check the fingerprint on the node, then re-run with --accept-new-host-keys to record it"
                )
                if _marked(files, "@cert-authority"):
                    hint = (
                        "envctl (paramiko) does not check host certificates (@cert-authority lines): "
                        "list the node's host key itself; or " + hint
                    )
                raise TransportError(
                    node, f"unknown host key for {hostname}: {fingerprint(key)} (not in {where})", hint=hint
                )
            record_host_key(known_hosts, hostname, key)

    return Policy()
