"""The agent's transfer side of a push: which blobs a node has, receiving the rest, verifying them.

``receive`` reads a framed stream on stdin (``blob DIGEST SIZE OFFSET`` + bytes, repeated, then
``end``), writing each blob as it arrives so a cut link leaves a partial the next push resumes.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import os
import re
import select
import sys
from collections.abc import Iterator
from typing import Any

from envctl.node.checks import read_stdin, show
from envctl.node.store import (
    AGENT_VERSION,
    CHUNK,
    AgentError,
    Store,
    check_digest,
    stat_stamp,
    verify_manifest,
    write_file,
)

MAX_HAVE = 1 << 20  # digests one ``have`` may ask about (an image of 10,002 layers is fine)
MAX_HEADER_LINE = 256  # bytes of one stream header; ``blob DIGEST SIZE OFFSET`` needs < 120
HEADER = re.compile(r"blob (sha256:[0-9a-f]{64}) ([0-9]{1,19}) ([0-9]{1,19})")


def cmd_have(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Which of the given digests (arguments, or one a line on stdin with ``--stdin``: an
    image of many layers would not fit a command line) are stored and intact, and partial
    sizes of the others."""
    digests = list(args.digests)
    if args.stdin:
        lines = read_stdin(MAX_HAVE * 72).decode("ascii", "replace").split()
        digests += [check_digest(d) for d in lines]
    present, partial = [], {}
    for digest in digests:
        if store.verified(check_digest(digest)):
            present.append(digest)
            continue
        with contextlib.suppress(FileNotFoundError):
            partial[digest] = os.stat(store.path("tmp", digest[7:] + ".partial")).st_size
    return {"agent": AGENT_VERSION, "present": present, "partial": partial}


class StdinReader:
    """Reads stdin with an idle timeout, so a dead link cannot hold the store lock forever."""

    def __init__(self, fd: int, idle_timeout: float) -> None:
        self.fd, self.idle, self.buf = fd, idle_timeout, b""
        # a bigger pipe from sshd means fewer wake-ups per megabyte (Linux only; best effort)
        with contextlib.suppress(AttributeError, OSError):
            import fcntl

            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, CHUNK)

    def _fill(self) -> bool:
        ready, _, _ = select.select([self.fd], [], [], self.idle)
        if not ready:
            raise AgentError(f"no data from the sender for {self.idle:.0f}s", "interrupted")
        chunk = os.read(self.fd, CHUNK)
        self.buf += chunk
        return bool(chunk)

    def line(self) -> str:
        """The next header line of the stream (bounded: a sender that never ends a line is
        refused, not buffered)."""
        while b"\n" not in self.buf[: MAX_HEADER_LINE + 1]:
            if len(self.buf) > MAX_HEADER_LINE:
                raise AgentError(f"stream header longer than {MAX_HEADER_LINE} bytes", "protocol")
            if not self._fill():
                raise AgentError("the sender closed the stream early", "interrupted")
        head, _, self.buf = self.buf.partition(b"\n")
        return head.decode("ascii", "replace")

    def chunks(self, n: int) -> Iterator[bytes]:
        """The next ``n`` payload bytes, in pieces as they arrive."""
        while n > 0:
            if not self.buf and not self._fill():
                raise AgentError("the sender closed the stream early", "interrupted")
            piece, self.buf = self.buf[:n], self.buf[n:]
            n -= len(piece)
            yield piece


def cmd_receive(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Framed stream on stdin: ``blob DIGEST SIZE OFFSET`` + bytes, repeated, then ``end``."""
    reader = StdinReader(sys.stdin.fileno(), args.idle_timeout)
    received, skipped, written = [], [], 0
    with store.locked(args.lock_timeout, "receive"):
        while True:
            line = reader.line()
            if line == "end":
                break
            match = HEADER.fullmatch(line)
            if match is None or int(match.group(3)) > int(match.group(2)):
                raise AgentError(f"malformed stream header {show(line)}", "protocol")
            digest, size, offset = match.group(1), int(match.group(2)), int(match.group(3))
            if store.verified(digest):  # another push stored it meanwhile: drain the bytes
                for _ in reader.chunks(size - offset):
                    pass
                skipped.append(digest)
                continue
            written += receive_blob(store, reader, digest, size, offset)
            received.append(digest)
    return {"received": received, "skipped": skipped, "bytes_written": written}


def receive_blob(store: Store, reader: StdinReader, digest: str, size: int, offset: int) -> int:
    """Append one blob's bytes to its partial from ``offset``, verify, move into blobs/."""
    partial = store.path("tmp", digest[7:] + ".partial")
    h = hashlib.sha256()
    with open(partial, "ab+") as fh:
        have = fh.seek(0, os.SEEK_END)
        if have < offset:
            raise AgentError(f"partial {digest} holds {have} bytes, sender resumed at {offset}", "resume")
        fh.truncate(offset)
        fh.seek(0)
        for chunk in iter(lambda: fh.read(min(CHUNK, offset - fh.tell())), b""):
            h.update(chunk)
        fh.seek(offset)
        written = 0
        try:
            for chunk in reader.chunks(size - offset):
                fh.write(chunk)  # written as it arrives: a cut link leaves a resumable partial
                h.update(chunk)
                written += len(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                os.unlink(partial)  # do not leave the node's disk full
            raise
    got = "sha256:" + h.hexdigest()
    if got != digest:
        os.unlink(partial)
        raise AgentError(f"blob {digest} arrived corrupt (sha256 {got}); discarded", "corrupt")
    final = store.blob(digest)
    os.replace(partial, final)
    write_file(store.path("stamps", digest[7:]), stat_stamp(os.stat(final)))
    return written


def cmd_verify(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Rehash every blob of a manifest (see verify_manifest)."""
    with store.locked(args.lock_timeout, "verify"):
        return {"corrupt": verify_manifest(store, check_digest(args.manifest))}
