"""The node store: content-addressed blobs, verification stamps, the lock. Standard library only.

Layout::

    STORE/blobs/sha256/HEX       verified blobs (layers, configs, manifests)
    STORE/stamps/HEX             (size, mtime, inode) when HEX was last verified
    STORE/tmp/HEX.partial        an interrupted transfer, resumed by the next one
    STORE/state/ENV.json         current and previous digest of ENV, when, by whom, runtime
    STORE/lock                   flock held by every command that changes the store
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from typing import Any

from envctl.node.checks import MAX_JSON, manifest_blobs, parse_json
from envctl.node.checks import AgentError as AgentError
from envctl.node.checks import check_digest as check_digest
from envctl.node.checks import check_env as check_env

AGENT_VERSION = 1
CHUNK = 1 << 20
MAX_TEXT = 1 << 20  # bytes of a state record, stamp or lock holder the agent reads


# ---------------------------------------------------------------- store basics
class Store:
    """The content-addressed store of one node."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def path(self, *parts: str) -> str:
        """A path inside the store."""
        return os.path.join(self.root, *parts)

    def blob(self, digest: str) -> str:
        """Where a blob lives."""
        return self.path("blobs", "sha256", check_digest(digest)[7:])

    def ensure(self) -> None:
        """Create the store's directories."""
        for sub in ("blobs/sha256", "stamps", "tmp", "state"):
            os.makedirs(self.path(sub), exist_ok=True)

    @contextlib.contextmanager
    def locked(self, timeout: float, what: str) -> Iterator[None]:
        """Serialise every change to this store (concurrent pushes wait here)."""
        self.ensure()
        fd = os.open(self.path("lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = (read_text(self.path("lock.holder")) or "unknown")[:200]
                        raise AgentError(
                            f"store {self.root} is locked by another envctl operation"
                            f" ({holder.strip()}) for {timeout:.0f}s",
                            "busy",
                        ) from None
                    time.sleep(0.05)
            write_file(self.path("lock.holder"), f"{what} pid {os.getpid()}\n")
            yield
        finally:
            os.close(fd)  # closing the descriptor drops the flock

    def verified(self, digest: str) -> bool:
        """Is the blob present and intact? Rehash only when its stat changed since verification."""
        path = self.blob(digest)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return False
        stamp = stat_stamp(st)
        if read_text(self.path("stamps", digest[7:])) == stamp:
            return True
        if file_sha256(path) != digest:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # corrupt: drop it so the next push re-sends it
            return False
        write_file(self.path("stamps", digest[7:]), stamp)
        return True

    def read_json_blob(self, digest: str) -> Any:
        """A verified JSON blob (a manifest), parsed; bounded in size and nesting."""
        if not self.verified(digest):
            raise AgentError(f"blob {digest} is missing or corrupt in {self.root}", "missing")
        with open(self.blob(digest), "rb") as fh:
            data = fh.read(MAX_JSON + 1)
        if len(data) > MAX_JSON:
            raise AgentError(f"blob {digest} is larger than {MAX_JSON} bytes: not a manifest", "input")
        return parse_json(data, f"blob {digest}")

    def image_blobs(self, digest: str) -> tuple[str, list[str]]:
        """The config and layer digests the (verified) manifest ``digest`` names, checked."""
        return manifest_blobs(self.read_json_blob(digest), digest)


def stat_stamp(st: os.stat_result) -> str:
    """What must not change for a verified blob to stay trusted without rehashing."""
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ino}"


def read_text(path: str, limit: int = MAX_TEXT) -> str | None:
    """A small file's text (at most ``limit`` characters), or None if it does not exist."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(limit)
    except FileNotFoundError:
        return None


def write_file(path: str, text: str) -> None:
    """Replace a small file atomically (temp name + rename)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def file_sha256(path: str) -> str:
    """sha256 digest of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def verify_manifest(store: Store, digest: str) -> list[str]:
    """Rehash a manifest and its blobs (no stamp trusted); corrupt or missing ones are returned
    and removed, so the next push sends them again."""
    bad = []
    try:
        config, layers = store.image_blobs(digest)
    except AgentError:
        return [digest]
    for d in [digest, config, *layers]:
        path = store.blob(d)
        if not (os.path.exists(path) and file_sha256(path) == d):
            bad.append(d)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    return bad
