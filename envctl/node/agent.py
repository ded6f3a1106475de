"""envctl's node agent: the node side of push, status and rollback. Standard library only.

Uploaded to each node as one zip (``envctl.node.bundle``: this module, ``store``, ``runtimes``,
``unpack``), stored content-addressed at ``<store>/agent/<sha256>.pyz`` and run as
``python3 AGENT --store STORE SUBCOMMAND ARGS`` over the transport: a node needs nothing but
python3 (>= 3.7). Every subcommand prints one JSON document on stdout; a failure prints
``{"error": MESSAGE, "kind": KIND}`` and exits 3 (0 with ``--soft``, for callers that only read
stdout). Subcommands: have, receive, verify, prepare, switch, restore, rollback, state.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import json
import os
import select
import sys
import time
from collections.abc import Iterator
from typing import Any

from envctl.node import unpack
from envctl.node.runtimes import RUNTIMES, docker_load, flip, image_id, prefix_dir
from envctl.node.store import (
    AGENT_VERSION,
    CHUNK,
    AgentError,
    Store,
    check_digest,
    check_env,
    file_sha256,
    read_text,
    stat_stamp,
    write_file,
)


# ---------------------------------------------------------------- have / receive
def cmd_have(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Which of the given digests are stored and intact, and partial sizes of the others."""
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
        """The next header line of the stream."""
        while b"\n" not in self.buf:
            if not self._fill():
                raise AgentError("the sender closed the stream early", "interrupted")
        head, _, self.buf = self.buf.partition(b"\n")
        return head.decode("ascii")

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


def verify_manifest(store: Store, digest: str) -> list[str]:
    """Rehash a manifest and its blobs (no stamp trusted); corrupt or missing ones are returned
    and removed, so the next push sends them again."""
    bad = []
    try:
        manifest = store.read_json_blob(digest)
        wanted = [manifest["config"]["digest"]] + [layer["digest"] for layer in manifest["layers"]]
    except (AgentError, KeyError, ValueError):
        return [digest]
    for d in [digest, *wanted]:
        path = store.blob(d)
        if not (os.path.exists(path) and file_sha256(path) == d):
            bad.append(d)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    return bad


def cmd_verify(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Rehash every blob of a manifest (see verify_manifest)."""
    with store.locked(args.lock_timeout, "verify"):
        return {"corrupt": verify_manifest(store, check_digest(args.manifest))}


def prepare(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Make the environment ready without making it current (unpack / load); idempotent."""
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
    """The state record of ``env``, or None if envctl never activated it here."""
    text = read_text(store.path("state", check_env(env) + ".json"))
    return None if text is None else dict(json.loads(text))


def switch_to(store: Store, args: argparse.Namespace, record: dict[str, Any]) -> dict[str, Any]:
    """Make ``record`` current (flip, then write state); the old state is returned for undo."""
    old = load_state(store, args.env)
    current = old.get("current") if old else None
    if current and current["digest"] == record["digest"] and not args.force:
        return {"changed": False, "state": old, "old": old}
    flip(args, args.env, record)
    new = {"env": args.env, "runtime": args.runtime, "current": record, "previous": current}
    write_file(store.path("state", args.env + ".json"), json.dumps(new, sort_keys=True))
    return {"changed": True, "state": new, "old": old}


def cmd_prepare(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Prepare under the store lock."""
    with store.locked(args.lock_timeout, "prepare " + args.env):
        return prepare(store, args)


def cmd_switch(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Prepare (if not yet) and switch ENV to MANIFEST under the store lock."""
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
    """Switch ENV back to its previous digest (which becomes the new previous)."""
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
    """State of the named environments (all when none named) with what is really active."""
    names = list(args.envs)
    if not names and os.path.isdir(store.path("state")):
        names = sorted(n[:-5] for n in os.listdir(store.path("state")) if n.endswith(".json"))
    out: dict[str, Any] = {}
    for name in names:
        state = load_state(store, name)
        out[name] = None if state is None else {**state, **actual(store, args, state)}
        current = (state or {}).get("current")
        if args.verify and current and not out[name]["drift"]:
            with store.locked(args.lock_timeout, "verify"):
                bad = verify_manifest(store, current["digest"])
            if bad:
                out[name]["drift"] = f"{len(bad)} corrupt blob(s) in the store, removed: re-push"
    return {"envs": out}


def cmd_gc(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Delete what no environment's current or previous version needs (blobs, unpacked trees,
    temp trees of crashed runs, partial transfers) once older than ``--max-age`` hours, so
    the blobs of a push still between stage and switch survive."""
    import shutil

    with store.locked(args.lock_timeout, "gc"):
        keep: set[str] = set()
        trees: set[str] = set()
        for name in os.listdir(store.path("state")):
            state = load_state(store, name[:-5]) if name.endswith(".json") else None
            for rec in (state or {}).get("current"), (state or {}).get("previous"):
                if not rec:
                    continue
                trees.add(f"{state['env']}@{rec['digest'][7:]}")  # type: ignore[index]
                keep.add(rec["digest"])
                with contextlib.suppress(AgentError, KeyError, ValueError):
                    manifest = store.read_json_blob(rec["digest"])
                    keep.add(manifest["config"]["digest"])
                    keep.update(layer["digest"] for layer in manifest["layers"])
        freed, blobs = 0, 0
        old = time.time() - args.max_age * 3600
        for hexd in os.listdir(store.path("blobs", "sha256")):
            path = store.path("blobs", "sha256", hexd)
            if "sha256:" + hexd not in keep and os.path.getmtime(path) < old:
                freed += os.path.getsize(store.path("blobs", "sha256", hexd))
                os.unlink(store.path("blobs", "sha256", hexd))
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(store.path("stamps", hexd))
                blobs += 1
        for name in os.listdir(store.path("tmp")):
            path = store.path("tmp", name)
            if os.path.getmtime(path) < old:
                freed += os.path.getsize(path)
                os.unlink(path)
        removed = []
        root = os.path.abspath(args.prefix_root)
        for name in os.listdir(root) if os.path.isdir(root) else []:
            path = os.path.join(root, name)
            stale = ".partial-" in name or ("@" in name and name not in trees)
            if stale and not os.path.islink(path) and os.path.getmtime(path) < old:
                shutil.rmtree(path)
                removed.append(name)
        return {"removed_blobs": blobs, "freed_bytes": freed, "removed_trees": sorted(removed)}


COMMANDS = {
    "have": cmd_have,
    "receive": cmd_receive,
    "verify": cmd_verify,
    "prepare": cmd_prepare,
    "switch": cmd_switch,
    "restore": cmd_restore,
    "rollback": cmd_rollback,
    "state": cmd_state,
    "gc": cmd_gc,
}


def parser() -> argparse.ArgumentParser:
    """The agent's command line."""
    p = argparse.ArgumentParser(prog="envctl-agent")
    p.add_argument("--store", required=True)
    p.add_argument("--prefix-root", default="/opt/envctl/envs")
    p.add_argument("--docker-host", default=None)
    p.add_argument("--runtime", default="oci", choices=RUNTIMES)
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
    state = sub.add_parser("state")
    state.add_argument("envs", nargs="*", type=check_env)
    state.add_argument("--verify", action="store_true", help="rehash every blob of each current")
    sub.add_parser("gc").add_argument("--max-age", type=float, default=24.0, help="hours")
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
