"""Unpacked prefix trees that are proven to be their digest before they are reused.

``unpack`` builds ``PREFIX_ROOT/ENV@HEX`` from the verified layers of manifest ``sha256:HEX``.
Right then, before anyone can touch it, the tree's record is written::

    STORE/trees/ENV@HEX.json   {"env", "digest", "fingerprint", "content", "at"[, "bad"]}

``fingerprint`` is ``unpack.fingerprint`` (paths, modes, sizes, mtimes, link targets: cheap, what
``status`` compares); ``content`` also hashes every regular file's bytes (what ``status --verify``
compares). ``ensure`` reuses an existing tree only when it is a real directory whose fingerprint
equals its record's and the record is not marked ``bad``; any other directory there (edited,
left by an older agent, marked bad by ``status --verify``) is unpacked again from the blobs and
swapped in. So a re-push repairs a tree, and a rollback never records a fingerprint of a tree
that does not match its digest: the fingerprint a state record carries is always the record's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import time
from typing import Any

from envctl.node import dirfd, hostenv, unpack, unpack_policy
from envctl.node.store import CHUNK, AgentError, Store, check_digest, check_env, read_text, write_file


def tree_name(env: str, digest: str) -> str:
    """``ENV@HEX``: the tree's name in the prefix root and its record's in the store."""
    return f"{check_env(env)}@{check_digest(digest)[7:]}"


def record_path(store: Store, env: str, digest: str) -> str:
    """Where the record of ``ENV@HEX`` lives."""
    return store.path("trees", tree_name(env, digest) + ".json")


def load_record(store: Store, env: str, digest: str) -> dict[str, Any] | None:
    """The tree's record, or None when there is none (or it is not one: then it proves nothing)."""
    text = read_text(record_path(store, env, digest))
    try:
        doc = json.loads(text) if text is not None else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("digest") != digest or doc.get("env") != env:
        return None
    if not isinstance(doc.get("fingerprint"), str) or not isinstance(doc.get("content"), str):
        return None
    return doc


def _save_record(store: Store, env: str, digest: str, record: dict[str, Any]) -> None:
    os.makedirs(store.path("trees"), exist_ok=True)
    write_file(record_path(store, env, digest), json.dumps(record, sort_keys=True))


def forget(store: Store, name: str) -> None:
    """Drop the record of tree ``name`` (``ENV@HEX``), when gc removed the tree."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(store.path("trees", name + ".json"))


def content_digest(tree: str) -> str:
    """Hash of every entry's path, type, mode and link target, and every regular file's bytes.

    Walks without following links; files are opened with ``O_NOFOLLOW``. ``__pycache__`` is
    ignored, as in the fingerprint: running the environment writes it."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            extra = ""
            if stat.S_ISLNK(st.st_mode):
                extra = os.readlink(full)
            elif stat.S_ISREG(st.st_mode):
                extra = _file_sha256(full)
            rel = os.path.relpath(full, tree)
            h.update(f"{rel}\0{st.st_mode:o}\0{extra}\n".encode("utf-8", "surrogateescape"))
    return "sha256:" + h.hexdigest()


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_real_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def check(store: Store, env: str, digest: str, target: str, host_prefix: str | None = None) -> str | None:
    """Why the tree at ``target`` cannot be trusted to be ``digest`` (None: it can, cheaply).

    With ``host_prefix`` (the image's environment) a tree unpacked without a host view (by an
    older agent) is not trusted either: it is unpacked again, with one."""
    if not _is_real_dir(target):
        return f"{target} is missing"
    record = load_record(store, env, digest)
    if record is None:
        return f"{target} has no record of being unpacked from {digest[:19]}"
    if record.get("bad"):
        return f"{target}: {record['bad']}"
    if host_prefix is not None and "host" not in record:
        return f"{target} has no host view"
    if unpack.fingerprint(target) != record["fingerprint"]:
        return f"files under {target} changed"
    return None


def ensure(
    store: Store,
    env: str,
    digest: str,
    layers: list[str],
    target: str,
    limits: unpack_policy.Limits | None = None,
    host_prefix: str | None = None,
) -> dict[str, Any]:
    """``target`` holds exactly ``digest``'s tree: reused when it checks out, else (re)unpacked.

    ``host_prefix``: the image's environment (its ``dev.envctl.env.prefix``), made host-runnable
    in ``TARGET/.envctl-host`` (``hostenv``) before the tree is fingerprinted.
    Returns ``{"path", "fingerprint", "rebuilt", "host"}`` (``rebuilt``: why it was unpacked, or
    None when it was reused; ``host``: True when the view was made, else why not). Something other than a directory in the way (a file, a link) is refused, never
    removed: envctl did not make it."""
    if os.path.lexists(target) and not _is_real_dir(target):
        raise AgentError(f"{target} is in the way (not a directory envctl unpacked); remove it", "runtime")
    why = check(store, env, digest, target, host_prefix)
    if why is None:
        record = load_record(store, env, digest)
        assert record is not None
        return {
            "path": target,
            "fingerprint": record["fingerprint"],
            "rebuilt": None,
            "host": record.get("host"),
        }
    existed = os.path.lexists(target)
    parent, name = os.path.split(target)
    os.makedirs(parent, exist_ok=True)
    fresh = target if not existed else os.path.join(parent, f".{name}.repair-{os.getpid()}")
    if existed and os.path.lexists(fresh):
        _remove_tree(fresh)
    unpack.unpack_layers(layers, fresh, limits)
    host: bool | str | None = None
    if host_prefix is not None:
        try:
            hostenv.write_view(fresh, hostenv.inspect(fresh, host_prefix), target)
            host = True
        except (hostenv.HostEnvError, OSError) as exc:
            host = f"not host-runnable: {exc}"[:500]
    record = {
        "env": env,
        "digest": digest,
        "fingerprint": unpack.fingerprint(fresh),
        "content": content_digest(fresh),
        "at": time.time(),
        **({"host": host} if host_prefix is not None else {}),
    }
    if existed:
        # Swap the repaired tree in. Between the two renames the name is missing for an instant;
        # readers of the env's symlink saw a tree that was not the image until now anyway.
        aside = os.path.join(parent, f".{name}.replaced-{os.getpid()}")
        if os.path.lexists(aside):
            _remove_tree(aside)
        os.rename(target, aside)
        os.rename(fresh, target)
        _remove_tree(aside)
    _save_record(store, env, digest, record)
    return {"path": target, "fingerprint": record["fingerprint"], "rebuilt": why, "host": host}


def verify_content(store: Store, env: str, digest: str, target: str) -> str | None:
    """Rehash every file of the tree (``status --verify``); a mismatch marks the record bad, so
    the next push or rollback unpacks the tree again. Returns why it does not match, or None."""
    record = load_record(store, env, digest)
    if record is None or not _is_real_dir(target):
        return None  # nothing to compare with: the cheap check has said what there is to say
    if record.get("bad"):
        return str(record["bad"])
    if content_digest(target) == record["content"]:
        return None
    why = f"file contents under {target} differ from the image"
    _save_record(store, env, digest, {**record, "bad": why})
    return why


def _remove_tree(path: str) -> None:
    """Delete ``path`` and all below it without following any link (``dirfd.remove_tree_at``)."""
    parent, name = os.path.split(path)
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        dirfd.remove_tree_at(fd, name)
    finally:
        os.close(fd)
