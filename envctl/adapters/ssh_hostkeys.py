"""Host keys: checked against the node's known_hosts file; unknown keys only on request.

An unknown key is refused unless the caller explicitly accepts new keys (then it is recorded,
under a file lock, since parallel connects may accept keys at the same time); a changed key is
always refused, by paramiko, and reported by ``envctl.adapters.ssh``.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def host_key_policy(node: str, known_hosts: Path, accept_new: bool) -> paramiko.MissingHostKeyPolicy:
    """Refuse keys not in ``known_hosts`` (naming ``node``), or record them with ``accept_new``."""
    import paramiko

    class Policy(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client: Any, hostname: str, key: paramiko.PKey) -> None:
            if not accept_new:
                raise TransportError(
                    node,
                    f"unknown host key for {hostname}: {fingerprint(key)} (not in {known_hosts})",
                    hint="check the fingerprint on the node, then re-run with "
                    "--accept-new-host-keys to record it",
                )
            record_host_key(known_hosts, hostname, key)

    return Policy()
