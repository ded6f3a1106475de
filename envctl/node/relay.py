"""Relay: during one push a node serves the blobs it holds or is receiving to other nodes, and
fetches its own from such a node. Standard library only (ssl, socket, threading).

``relay-serve`` reads one JSON line on stdin (from the sender, over SSH): the push's token, this node's
per-push certificate and key, and the address and port to listen on. It serves until stdin says
``stop`` or closes (the sender's SSH session ended), or ``max_seconds`` pass: the port and the
process end with the push. The key is loaded from an anonymous memory file (``memfd``) where the
kernel has them, else from a 0600 temporary file removed before the first connection is accepted:
nothing stays on the node's disk.

``relay-fetch`` reads one JSON document on stdin: the token, the sources (nearest first, each with the
sha256 of its certificate: the pin) and the blobs. Each blob goes through ``receive_blob``, the
one path that verifies sha256 before a blob enters the store, so a relay cannot corrupt anything.
A source that refuses, stalls, is slower than ``min_rate`` or sends bytes that do not verify is
left for the next one, which resumes from the partial. Past the last source the error says so and
the sender streams the rest itself.

Protocol, after TLS (the client checks the pin before it sends the token)::

    -> envctl-relay/1 TOKEN DIGEST SIZE OFFSET\\n
    <- ok\\n + bytes OFFSET..SIZE of the blob        (or ``error MESSAGE\\n``)

A blob is served from ``blobs/`` when stored, else from its ``.partial`` as that grows (the relay
forwards before its own copy is complete), waiting for it to appear.

Test only: ``ENVCTL_TEST_RELAY_CORRUPT=1`` in the serving agent's environment flips one byte of
every blob it serves. The sender never sets an environment variable (it passes argv only, and
sshd accepts none from the client unless its own ``AcceptEnv`` says so; sudo resets it), so only
the node's own configuration can turn it on: the fault tests set it in one node's sshd_config.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import os
import re
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

from envctl.node.checks import parse_json, read_stdin, show
from envctl.node.receive import receive_blob
from envctl.node.store import CHUNK, AgentError, Store, check_digest

PROTOCOL = "envctl-relay/1"
MAX_CONFIG = 1 << 20  # bytes of the serve or fetch document on stdin
MAX_REQUEST = 256
_REQUEST = re.compile(PROTOCOL + r" ([0-9a-f]{64}) (sha256:[0-9a-f]{64}) ([0-9]{1,19}) ([0-9]{1,19})")
_TOKEN = re.compile(r"[0-9a-f]{64}")
_PIN = re.compile(r"[0-9a-f]{64}")
TEST_CORRUPT_ENV = "ENVCTL_TEST_RELAY_CORRUPT"
POLL = 0.02  # seconds between looks at a growing partial
FIRST_BYTE_GRACE = 3  # times the stall limit a relay may take for a blob's first bytes


def _read_line(fd: int, limit: int) -> bytes:
    """One line from ``fd`` (bounded), without reading past it: the rest of stdin is control."""
    out = bytearray()
    while not out.endswith(b"\n"):
        if len(out) > limit:
            raise AgentError(f"stdin line longer than {limit} bytes", "input")
        piece = os.read(fd, 1)
        if not piece:
            break
        out += piece
    return bytes(out)


def _document(data: bytes, keys: dict[str, type], what: str) -> dict[str, Any]:
    """The stdin document: an object with exactly ``keys``, each of its type."""
    doc = parse_json(data, what)
    if not isinstance(doc, dict) or set(doc) != set(keys):
        raise AgentError(f"{what}: expected the keys {', '.join(sorted(keys))}", "input")
    for key, kind in keys.items():
        want = (int, float) if kind is float else kind
        if not isinstance(doc[key], want) or (isinstance(doc[key], bool) and kind is not bool):
            raise AgentError(f"{what}: {key} must be a {kind.__name__}", "input")
    if not _TOKEN.fullmatch(doc["token"]):
        raise AgentError(f"{what}: malformed token", "input")
    return doc


class Tls:
    """TLS over a plain socket through memory BIOs (``ssl.SSLObject``).

    ``ssl.SSLSocket`` makes a system call or two for every 16 KiB record each way; here one
    ``recv`` takes in up to ``RAW`` bytes of records and one ``sendall`` puts out every record of
    a write, so the relay's cost per byte is the cipher's, not the kernel crossings'. The
    handshake, the certificate and the cipher are ssl's own: only who moves the bytes changes.
    Timeouts are the socket's (``settimeout``); they raise ``TimeoutError`` as a socket's do."""

    RAW = 256 * 1024

    def __init__(self, raw: socket.socket, ctx: ssl.SSLContext, server_side: bool) -> None:
        self.raw = raw
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._obj = ctx.wrap_bio(self._in, self._out, server_side=server_side)
        self._eof = False
        while True:
            try:
                self._obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                if not self._pull():
                    raise ssl.SSLEOFError("the peer closed the connection during the handshake") from None
        self._flush()

    def _flush(self) -> None:
        if self._out.pending:
            self.raw.sendall(self._out.read())

    def _pull(self) -> bool:
        data = self.raw.recv(self.RAW)
        if not data:
            self._in.write_eof()
            self._eof = True
            return False
        self._in.write(data)
        return True

    def getpeercert(self, binary_form: bool = False) -> Any:
        return self._obj.getpeercert(binary_form)

    def settimeout(self, value: float | None) -> None:
        self.raw.settimeout(value)

    def gettimeout(self) -> float | None:
        return self.raw.gettimeout()

    def sendall(self, data: bytes | memoryview) -> None:
        self._obj.write(data)
        self._flush()

    def recv_into(self, view: memoryview) -> int:
        """Decrypted bytes into ``view``: at least one (0 at the end of the stream), then what
        else the records already here hold, up to ``len(view)``."""
        got = 0
        while got < len(view):
            try:
                n: int = self._obj.read(len(view) - got, view[got:])  # type: ignore[assignment]
            except ssl.SSLWantReadError:
                if got or self._eof or not self._pull():
                    break
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
            if not n:
                break
            got += n
        return got

    def recv(self, limit: int) -> bytes:
        buf = bytearray(limit)
        return bytes(buf[: self.recv_into(memoryview(buf))])

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> Tls:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- serve
SERVE_KEYS = {
    "token": str,
    "tls": bool,
    "cert": str,
    "key": str,
    "bind": str,
    "port": int,
    "max_seconds": float,
}


def _server_context(cert: str, key: str, where: str) -> ssl.SSLContext:
    """A TLS server context holding the per-push certificate, the key never on the disk."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    pem = (cert + "\n" + key).encode()
    memfd = getattr(os, "memfd_create", None)
    if memfd is not None:
        fd = memfd("envctl-relay", 0)
        try:
            os.write(fd, pem)
            path = f"/proc/self/fd/{fd}"
            ctx.load_cert_chain(path, path)
        finally:
            os.close(fd)
        return ctx
    fd, path = tempfile.mkstemp(prefix=".relay-", dir=where)  # 0600, removed before serving
    try:
        os.write(fd, pem)
        os.close(fd)
        ctx.load_cert_chain(path, path)
    finally:
        os.unlink(path)
    return ctx


class _Served:
    def __init__(self) -> None:
        self.bytes = self.connections = self.refused = 0
        self.lock = threading.Lock()

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)


def _open_blob(store: Store, digest: str, idle: float) -> int:
    """A descriptor on the stored blob, else on its growing partial (waited for, up to ``idle``)."""
    deadline = time.monotonic() + idle
    while True:
        for path in (store.blob(digest), store.path("tmp", digest[7:] + ".partial")):
            with contextlib.suppress(FileNotFoundError):
                return os.open(path, os.O_RDONLY)
        if time.monotonic() > deadline:
            raise AgentError(f"{digest} did not arrive here within {idle:.0f}s", "interrupted")
        time.sleep(POLL * 5)


def _send_blob(conn: Any, store: Store, digest: str, size: int, offset: int, idle: float) -> int:
    """Bytes ``offset..size`` of the blob, following its partial as it grows. Plaintext goes
    from the page cache to the socket without passing through Python (``sendfile``)."""
    fd = _open_blob(store, digest, idle)
    corrupt = os.environ.get(TEST_CORRUPT_ENV) == "1"  # test only: see the module docstring
    plain = isinstance(conn, socket.socket) and not corrupt
    try:
        conn.sendall(b"ok\n")
        pos, quiet_since = offset, time.monotonic()
        with os.fdopen(os.dup(fd), "rb") as fh:
            while pos < size:
                ready = min(os.fstat(fd).st_size, size) - pos
                if ready > 0:
                    if plain:
                        pos += conn.sendfile(fh, pos, min(ready, CHUNK * 4))
                    else:
                        data = os.pread(fd, min(CHUNK, ready), pos)
                        if corrupt and pos == offset:
                            data = bytes([data[0] ^ 0xFF]) + data[1:]
                        conn.sendall(data)
                        pos += len(data)
                    quiet_since = time.monotonic()
                    continue
                if os.fstat(fd).st_nlink == 0 and not os.path.exists(store.blob(digest)):
                    return pos - offset  # the partial was discarded (corrupt here): the child re-asks
                if time.monotonic() - quiet_since > idle:
                    return pos - offset
                time.sleep(POLL)
        return pos - offset
    finally:
        os.close(fd)


def _handle(
    raw: socket.socket, ctx: ssl.SSLContext | None, token: str, store: Store, idle: float, served: _Served
) -> None:
    try:
        raw.settimeout(idle)
        conn: Any = Tls(raw, ctx, server_side=True) if ctx is not None else raw
        with conn:
            line = b""
            while not line.endswith(b"\n") and len(line) <= MAX_REQUEST:
                piece = conn.recv(MAX_REQUEST)
                if not piece:
                    return
                line += piece
            match = _REQUEST.fullmatch(line.decode("ascii", "replace").strip())
            if match is None or not hmac.compare_digest(match.group(1), token):
                served.add(refused=1)
                conn.sendall(b"error refused\n")
                return
            digest, size, offset = match.group(2), int(match.group(3)), int(match.group(4))
            if offset > size:
                conn.sendall(b"error offset past the end\n")
                return
            served.add(connections=1)
            served.add(bytes=_send_blob(conn, store, digest, size, offset, idle))
    except (OSError, ssl.SSLError, AgentError):
        return  # the child sees a short stream and moves on to its next source


def cmd_serve(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Serve this node's blobs to the push's other nodes until stdin says stop or closes."""
    doc = _document(_read_line(0, MAX_CONFIG), SERVE_KEYS, "serve document")
    store.ensure()
    ctx = _server_context(doc["cert"], doc["key"], store.path("tmp")) if doc["tls"] else None
    try:
        listener = socket.socket(socket.AF_INET6 if ":" in doc["bind"] else socket.AF_INET)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((doc["bind"], doc["port"]))
        listener.listen(64)
    except OSError as exc:
        raise AgentError(
            f"cannot listen on {show(doc['bind'])}:{doc['port']}: {exc.strerror}", "port"
        ) from exc
    stop = threading.Event()

    def watch_stdin() -> None:  # "stop", or EOF when the sender's session ends
        with contextlib.suppress(OSError):
            while True:
                piece = os.read(0, 64)
                if not piece or b"stop" in piece:
                    break
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    served = _Served()
    deadline = time.monotonic() + doc["max_seconds"]
    listener.settimeout(0.2)
    with listener:
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(
                target=_handle, args=(raw, ctx, doc["token"], store, args.idle_timeout, served), daemon=True
            ).start()
    return {"served_bytes": served.bytes, "connections": served.connections, "refused": served.refused}


# ---------------------------------------------------------------- fetch
FETCH_KEYS = {
    "token": str,
    "tls": bool,
    "sources": list,
    "blobs": list,
    "stall": float,
    "min_rate": float,
    "window": float,
}


class SocketReader:
    """``receive_blob``'s reader over a relay connection: a source that goes quiet for the idle
    timeout, or brings less than ``min_rate`` bytes/s over a ``window``, is given up.

    Bytes land in one buffer, reused (``recv_into``): a TLS socket returns one 16 KiB record a
    call, and ``recv(n)`` would allocate (and, past malloc's mmap threshold, map and unmap) ``n``
    bytes for each. A piece is yielded as a view of that buffer, valid until the next one."""

    def __init__(self, conn: Any, idle: float, min_rate: float, window: float) -> None:
        self.conn, self.idle, self.min_rate, self.window = conn, idle, min_rate, window
        self.buf = b""  # what came in with the answer line, ahead of the payload
        self._block = bytearray(CHUNK)
        self._view = memoryview(self._block)
        # the first bytes may wait for the relay's own copy to start: a longer grace
        conn.settimeout(idle * FIRST_BYTE_GRACE)

    def line(self) -> str:
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_REQUEST:
                raise AgentError("relay answer too long", "protocol")
            self.buf += self._view[: self._recv(MAX_REQUEST)]
        head, _, self.buf = self.buf.partition(b"\n")
        return head.decode("ascii", "replace")

    def _recv(self, limit: int) -> int:
        """At least one byte into the buffer, up to ``limit`` (``Tls.recv_into`` gives every
        record already here): few, large pieces for the hash and the file."""
        try:
            got: int = self.conn.recv_into(self._view[:limit])
        except TimeoutError:
            raise AgentError(f"the relay sent nothing for {self.conn.gettimeout():.0f}s", "slow") from None
        if not got:
            raise AgentError("the relay closed the stream early", "interrupted")
        return got

    def chunks(self, n: int) -> Iterator[bytes | memoryview]:
        start, got, first = time.monotonic(), 0, 0
        if self.buf and n:
            piece, self.buf = self.buf[:n], self.buf[n:]
            n -= len(piece)
            got += len(piece)
            self.conn.settimeout(self.idle)  # the payload has begun
            yield piece
        if n:
            first = self._recv(min(n, CHUNK))
            self.conn.settimeout(self.idle)
        while n > 0:
            size = first if first else self._recv(min(n, CHUNK))
            first = 0
            n -= size
            got += size
            elapsed = time.monotonic() - start
            if elapsed > self.window:
                if got < self.min_rate * elapsed:
                    raise AgentError(f"the relay brought {got / elapsed / 1e6:.2f} MB/s", "slow")
                start, got = time.monotonic(), 0
            yield self._view[:size]


def _connect(source: dict[str, Any], tls: bool, idle: float) -> Any:
    """A connection to ``source``, its certificate checked against the pin before anything is sent."""
    deadline = time.monotonic() + idle
    while True:
        try:
            raw = socket.create_connection((source["host"], source["port"]), timeout=idle)
            break
        except ConnectionRefusedError:  # its relay may still be starting
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    if not tls:
        return raw
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the pin below is the check: a per-push self-signed certificate
    try:
        conn = Tls(raw, ctx, server_side=False)
    except BaseException:
        raw.close()
        raise
    der = conn.getpeercert(binary_form=True) or b""
    if not hmac.compare_digest(hashlib.sha256(der).hexdigest(), source["pin"]):
        conn.close()
        raise AgentError(f"{source['name']}: the relay's certificate is not the pinned one", "pin")
    return conn


def _check_fetch(doc: dict[str, Any]) -> None:
    for s in doc["sources"]:
        if not (isinstance(s, dict) and set(s) == {"name", "host", "port", "pin"}):
            raise AgentError("fetch document: a source needs name, host, port, pin", "input")
        if not (isinstance(s["port"], int) and 0 < s["port"] < 65536 and _PIN.fullmatch(str(s["pin"]))):
            raise AgentError(f"fetch document: bad port or pin for {show(s['name'])}", "input")
    for b in doc["blobs"]:
        if not (isinstance(b, list) and len(b) == 2 and isinstance(b[1], int) and b[1] >= 0):
            raise AgentError("fetch document: a blob is [digest, size]", "input")
        check_digest(b[0])


def cmd_fetch(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Fetch the listed blobs from the relays named on stdin, nearest first, each verified."""
    doc = _document(read_stdin(MAX_CONFIG), FETCH_KEYS, "fetch document")
    _check_fetch(doc)
    sources, at = doc["sources"], 0
    received: list[str] = []
    switches: list[dict[str, Any]] = []
    written = 0
    from_source: dict[str, str] = {}
    with store.locked(args.lock_timeout, "relay-fetch"):
        for digest, size in doc["blobs"]:
            while not store.verified(digest):
                if at >= len(sources):
                    error = AgentError("no relay left to fetch from", "relay")
                    error.extra = {"received": received, "switches": switches, "bytes_written": written}  # type: ignore[attr-defined]
                    raise error
                source = sources[at]
                partial = store.path("tmp", digest[7:] + ".partial")
                offset = os.path.getsize(partial) if os.path.exists(partial) else 0
                offset = offset if offset <= size else 0
                try:
                    conn = _connect(source, doc["tls"], doc["stall"])
                    with conn:
                        conn.sendall(f"{PROTOCOL} {doc['token']} {digest} {size} {offset}\n".encode())
                        reader = SocketReader(conn, doc["stall"], doc["min_rate"], doc["window"])
                        answer = reader.line()
                        if answer != "ok":
                            raise AgentError(f"the relay said {show(answer)}", "refused")
                        written += receive_blob(store, reader, digest, size, offset)  # type: ignore[arg-type]
                    received.append(digest)
                    from_source[digest] = source["name"]
                except (AgentError, OSError, ssl.SSLError) as exc:
                    kind = getattr(exc, "kind", "unreachable")
                    switches.append(
                        {"blob": digest, "from": source["name"], "kind": kind, "why": show(str(exc))}
                    )
                    at += 1  # never back to a source given up on: the next one is nearer the sender
    return {"received": received, "switches": switches, "bytes_written": written, "sources": from_source}
