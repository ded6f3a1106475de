"""envctl's node agent: the node side of push, status and rollback. Standard library only.

This file is uploaded verbatim to each node (content-addressed, ``<store>/agent/<sha256>.py``) and
run as ``python3 AGENT --store STORE SUBCOMMAND ARGS`` over the transport. It is one file on
purpose: a node needs nothing but python3 (>= 3.7). Every subcommand prints one JSON document on
stdout; a failure prints ``{"error": MESSAGE, "kind": KIND}`` and exits 3.

Store layout::

    STORE/blobs/sha256/HEX       verified blobs (layers, configs, manifests)
    STORE/stamps/HEX             (size, mtime, inode) when HEX was last verified
    STORE/tmp/HEX.partial        an interrupted transfer, resumed by the next one
    STORE/state/ENV.json         current and previous digest of ENV, when, by whom, runtime
    STORE/lock                   flock held by every command that changes the store
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

from envctl.node import unpack

AGENT_VERSION = 1
CHUNK = 1 << 20
ENV_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class AgentError(Exception):
    """A failure reported to the caller as ``{"error": ..., "kind": ...}``."""

    def __init__(self, message: str, kind: str = "failed") -> None:
        super().__init__(message)
        self.kind = kind


# ---------------------------------------------------------------- store basics
class Store:
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def blob(self, digest: str) -> str:
        return self.path("blobs", "sha256", check_digest(digest)[7:])

    def ensure(self) -> None:
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
                        holder = read_text(self.path("lock.holder")) or "unknown"
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
        if not self.verified(digest):
            raise AgentError(f"blob {digest} is missing or corrupt in {self.root}", "missing")
        with open(self.blob(digest), "rb") as fh:
            return json.loads(fh.read().decode("utf-8"))


def check_digest(digest: str) -> str:
    if not DIGEST.match(digest):
        raise AgentError(f"not a sha256 digest: {digest!r}", "input")
    return digest


def check_env(name: str) -> str:
    if not ENV_NAME.match(name):
        raise AgentError(f"bad environment name {name!r}", "input")
    return name


def stat_stamp(st: os.stat_result) -> str:
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ino}"


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def write_file(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


# ---------------------------------------------------------------- have / receive
def cmd_have(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    present, partial = [], {}
    for digest in args.digests:
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

    def _fill(self) -> bool:
        ready, _, _ = select.select([self.fd], [], [], self.idle)
        if not ready:
            raise AgentError(f"no data from the sender for {self.idle:.0f}s", "interrupted")
        chunk = os.read(self.fd, CHUNK)
        self.buf += chunk
        return bool(chunk)

    def line(self) -> str:
        while b"\n" not in self.buf:
            if not self._fill():
                raise AgentError("the sender closed the stream early", "interrupted")
        head, _, self.buf = self.buf.partition(b"\n")
        return head.decode("ascii")

    def chunks(self, n: int) -> Iterator[bytes]:
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
            header = reader.line().split()
            if header == ["end"]:
                break
            if len(header) != 4 or header[0] != "blob":
                raise AgentError("malformed stream header {!r}".format(" ".join(header)), "protocol")
            digest, size, offset = check_digest(header[1]), int(header[2]), int(header[3])
            if store.verified(digest):  # another push stored it meanwhile: drain the bytes
                for _ in reader.chunks(size - offset):
                    pass
                skipped.append(digest)
                continue
            written += receive_blob(store, reader, digest, size, offset)
            received.append(digest)
    return {"received": received, "skipped": skipped, "bytes_written": written}


def receive_blob(store: Store, reader: StdinReader, digest: str, size: int, offset: int) -> int:
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
    """Rehash every blob of a manifest; corrupt ones are removed so the next push re-sends."""
    manifest = store.read_json_blob(check_digest(args.manifest))
    ok, bad = [], []
    for d in [manifest["config"]["digest"]] + [layer["digest"] for layer in manifest["layers"]]:
        path = store.blob(d)
        if os.path.exists(path) and file_sha256(path) == d:
            ok.append(d)
        else:
            bad.append(d)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    return {"ok": ok, "corrupt": bad}


# ---------------------------------------------------------------- runtimes
def docker_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    if args.docker_host:
        env["DOCKER_HOST"] = args.docker_host
    return env


def engine(args: argparse.Namespace, *argv: str, stdin: IO[bytes] | None = None) -> str:
    proc = subprocess.run(
        [args.runtime, *argv], stdin=stdin, capture_output=True, env=docker_env(args), check=False
    )
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["(no output)"]
        raise AgentError(f"{args.runtime} {argv[0]} failed: {msg[-1]}", "runtime")
    return proc.stdout.decode("utf-8", "replace").strip()


def image_ref(env: str, digest: str) -> str:
    return f"envctl/{env}:{digest[7:19]}"


def image_id(args: argparse.Namespace, ref: str) -> str | None:
    try:
        return engine(args, "image", "inspect", "--format", "{{.Id}}", ref)
    except AgentError:
        return None


def docker_load(store: Store, args: argparse.Namespace, manifest: dict[str, Any]) -> str:
    """Feed ``docker load`` a docker-archive built on the fly from local blobs (nothing re-sent)."""
    import tarfile

    env, digest = args.env, args.manifest
    config = str(manifest["config"]["digest"])
    ref = image_ref(env, digest)
    if image_id(args, ref) == config:
        return config
    layers = [layer["digest"] for layer in manifest["layers"]]
    index = [
        {
            "Config": config[7:] + ".json",
            "RepoTags": [ref],
            "Layers": [d[7:] + "/layer.tar" for d in layers],
        }
    ]
    proc = subprocess.Popen(
        [args.runtime, "load"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=docker_env(args),
    )
    assert proc.stdin is not None
    try:
        with tarfile.open(fileobj=proc.stdin, mode="w|") as tar:
            data = json.dumps(index).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(data)
            tar.addfile(info, fileobj=__import__("io").BytesIO(data))
            for name, d in [(config[7:] + ".json", config)] + [(d[7:] + "/layer.tar", d) for d in layers]:
                path = store.blob(d)
                info = tarfile.TarInfo(name)
                info.size = os.path.getsize(path)
                with open(path, "rb") as fh:
                    tar.addfile(info, fileobj=fh)
    except BrokenPipeError:
        pass
    _, err = proc.communicate()
    if proc.returncode != 0:
        lines = err.decode("utf-8", "replace").strip().splitlines() or ["(no output)"]
        raise AgentError(f"{args.runtime} load failed: {lines[-1]}", "runtime")
    got = image_id(args, ref)
    if got != config:
        raise AgentError(f"{ref} loaded image id {got}, expected {config}", "runtime")
    return config


def prefix_dir(args: argparse.Namespace, env: str, digest: str) -> str:
    return os.path.join(os.path.abspath(args.prefix_root), f"{env}@{digest[7:]}")


def prepare(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    manifest = store.read_json_blob(args.manifest)
    blobs = [manifest["config"]["digest"]] + [layer["digest"] for layer in manifest["layers"]]
    missing = [d for d in blobs if not store.verified(d)]
    if missing:
        raise AgentError("blobs missing or corrupt in the store: {}".format(" ".join(missing)), "missing")
    if args.runtime in ("docker", "podman"):
        return {"image_id": docker_load(store, args, manifest)}
    if args.runtime == "prefix":
        target = prefix_dir(args, args.env, args.manifest)
        if not os.path.isdir(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            unpack.unpack_layers([store.blob(d) for d in blobs[1:]], target)
        return {"path": target, "fingerprint": unpack.fingerprint(target)}
    return {}


# ---------------------------------------------------------------- state / switch / rollback
def load_state(store: Store, env: str) -> dict[str, Any] | None:
    text = read_text(store.path("state", check_env(env) + ".json"))
    return None if text is None else dict(json.loads(text))


def flip(args: argparse.Namespace, env: str, record: dict[str, Any] | None) -> None:
    """Point ENV at ``record`` (None: at nothing). One rename or one tag: never half-switched."""
    if args.runtime in ("docker", "podman"):
        if record is None:
            with contextlib.suppress(AgentError):
                engine(args, "rmi", "--no-prune", f"envctl/{env}:current")
        else:
            engine(args, "tag", image_ref(env, record["digest"]), f"envctl/{env}:current")
    elif args.runtime == "prefix":
        link = os.path.join(os.path.abspath(args.prefix_root), env)
        if record is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)
            return
        tmp = f"{link}.envctl-{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink("{}@{}".format(env, record["digest"][7:]), tmp)
        try:
            os.rename(tmp, link)  # atomic: readers see the old or the new tree, nothing between
        except OSError as exc:
            os.unlink(tmp)
            raise AgentError(f"cannot switch {link}: {exc.strerror}", "runtime") from exc


def switch_to(store: Store, args: argparse.Namespace, record: dict[str, Any]) -> dict[str, Any]:
    old = load_state(store, args.env)
    current = old.get("current") if old else None
    if current and current["digest"] == record["digest"] and not args.force:
        return {"changed": False, "state": old, "old": old}
    flip(args, args.env, record)
    new = {"env": args.env, "runtime": args.runtime, "current": record, "previous": current}
    write_file(store.path("state", args.env + ".json"), json.dumps(new, sort_keys=True))
    return {"changed": True, "state": new, "old": old}


def cmd_prepare(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    with store.locked(args.lock_timeout, "prepare " + args.env):
        return prepare(store, args)


def cmd_switch(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    with store.locked(args.lock_timeout, "switch " + args.env):
        info = prepare(store, args)
        record = {"digest": args.manifest, "when": time.time(), "by": args.by, **info}
        return switch_to(store, args, record)


def cmd_restore(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Undo a switch: put back the state a ``switch`` reported as ``old`` (JSON on stdin)."""
    old = json.loads(sys.stdin.read() or "null")
    with store.locked(args.lock_timeout, "restore " + args.env):
        flip(args, args.env, old["current"] if old else None)
        path = store.path("state", args.env + ".json")
        if old is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        else:
            write_file(path, json.dumps(old, sort_keys=True))
        return {"state": old}


def cmd_rollback(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    with store.locked(args.lock_timeout, "rollback " + args.env):
        state = load_state(store, args.env)
        if not state or not state.get("previous"):
            raise AgentError(f"{args.env} has no previous version to roll back to", "input")
        args.runtime, args.manifest, args.force = (
            state["runtime"],
            state["previous"]["digest"],
            True,
        )
        info = prepare(store, args)
        record = {"digest": args.manifest, "when": time.time(), "by": args.by, **info}
        return switch_to(store, args, record)


def actual(store: Store, args: argparse.Namespace, state: dict[str, Any]) -> dict[str, Any]:
    """What is really active for an environment, compared with what envctl recorded."""
    env, current, runtime = state["env"], state.get("current"), state["runtime"]
    args.runtime = runtime
    if current is None:
        return {"actual": None, "drift": None}
    if runtime == "prefix":
        link = os.path.join(os.path.abspath(args.prefix_root), env)
        try:
            target = os.readlink(link)
        except OSError:
            return {"actual": None, "drift": f"{link} is missing or not a symlink"}
        if target != "{}@{}".format(env, current["digest"][7:]):
            return {"actual": None, "drift": f"{link} points to {target}"}
        if unpack.fingerprint(os.path.join(os.path.dirname(link), target)) != current.get("fingerprint"):
            return {"actual": current["digest"], "drift": f"files under {link} changed"}
    elif runtime in ("docker", "podman"):
        got = image_id(args, f"envctl/{env}:current")
        if got != current.get("image_id"):
            return {"actual": None, "drift": f"envctl/{env}:current is image {got}"}
    elif not store.verified(current["digest"]):
        return {"actual": None, "drift": "manifest {} missing from store".format(current["digest"])}
    return {"actual": current["digest"], "drift": None}


def cmd_state(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    names = list(args.envs)
    if not names and os.path.isdir(store.path("state")):
        names = sorted(n[:-5] for n in os.listdir(store.path("state")) if n.endswith(".json"))
    out: dict[str, Any] = {}
    for name in names:
        state = load_state(store, name)
        out[name] = None if state is None else {**state, **actual(store, args, state)}
    return {"envs": out}


COMMANDS = {
    "have": cmd_have,
    "receive": cmd_receive,
    "verify": cmd_verify,
    "prepare": cmd_prepare,
    "switch": cmd_switch,
    "restore": cmd_restore,
    "rollback": cmd_rollback,
    "state": cmd_state,
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="envctl-agent")
    p.add_argument("--store", required=True)
    p.add_argument("--prefix-root", default="/opt/envctl/envs")
    p.add_argument("--docker-host", default=None)
    p.add_argument("--runtime", default="oci", choices=["docker", "podman", "prefix", "oci"])
    p.add_argument("--lock-timeout", type=float, default=600.0)
    p.add_argument("--idle-timeout", type=float, default=60.0)
    p.add_argument("--by", default="unknown")
    p.add_argument("--force", action="store_true")
    p.add_argument("--soft", action="store_true", help="exit 0 on failure (the JSON says it)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("have").add_argument("digests", nargs="*", type=check_digest)
    sub.add_parser("receive")
    sub.add_parser("verify").add_argument("manifest", type=check_digest)
    for name in ("prepare", "switch"):
        sp = sub.add_parser(name)
        sp.add_argument("env", type=check_env)
        sp.add_argument("manifest", type=check_digest)
    for name in ("restore", "rollback"):
        sub.add_parser(name).add_argument("env", type=check_env)
    sub.add_parser("state").add_argument("envs", nargs="*", type=check_env)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; print its JSON result (or the error) on stdout."""
    try:
        args = parser().parse_args(argv)
        result = COMMANDS[args.command](Store(args.store), args)
    except unpack.UnpackError as exc:
        result, code = {"error": str(exc), "kind": "hostile"}, 3
    except AgentError as exc:
        result, code = {"error": str(exc), "kind": exc.kind}, 3
    except OSError as exc:
        kind = "nospace" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "os"
        where = exc.filename or "the store"
        result, code = {"error": f"{where}: {exc.strerror}", "kind": kind}, 3
    except Exception as exc:  # report, never a bare traceback the caller cannot parse
        result, code = {"error": f"agent bug: {type(exc).__name__}: {exc}", "kind": "bug"}, 3
    else:
        code = 0
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    if code:
        sys.stderr.write("envctl-agent: {}\n".format(result["error"]))
    return 0 if code and "--soft" in (argv if argv is not None else sys.argv) else code


if __name__ == "__main__":
    sys.exit(main())
