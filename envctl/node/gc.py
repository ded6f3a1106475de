"""The agent's ``gc``: delete what no environment's current or previous version needs.

The digest an environment's promise names (a push or rollback that claimed the node and may not
have switched yet, ``epochs``) is kept too, whatever its age, with its tree.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import time
from typing import Any

from envctl.node import epochs
from envctl.node import trees as tree_records
from envctl.node.dirfd import remove_tree_at
from envctl.node.state import load_state, state_names
from envctl.node.store import AgentError, Store, read_text


def cmd_gc(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Delete what no environment's current or previous version needs (blobs, unpacked trees,
    temp trees of crashed runs, partial transfers) once older than ``--max-age`` hours, so
    the blobs of a push still between stage and switch survive."""
    with store.locked(args.lock_timeout, "gc"):
        keep: set[str] = set()
        trees: set[str] = set()
        spared: list[str] = []  # name prefixes of trees kept for an unreadable state file
        bad: dict[str, str] = {}
        for name in state_names(store):  # one by one: a bad file costs only its own keep-set
            try:
                state = load_state(store, name)
            except AgentError as exc:
                # keep what the file may still mean: every digest it mentions, every tree of it
                bad[name[:200]] = str(exc)
                spared.append(name + "@")
                text = read_text(store.path("state", name + ".json")) or ""
                records = [{"digest": "sha256:" + h} for h in re.findall(r"sha256:([0-9a-f]{64})", text)]
            else:
                records = [r for r in ((state or {}).get("current"), (state or {}).get("previous")) if r]
            for rec in records:
                trees.add(f"{name}@{rec['digest'][7:]}")
                keep.add(rec["digest"])
                with contextlib.suppress(AgentError):
                    config, layers = store.image_blobs(rec["digest"])
                    keep.add(config)
                    keep.update(layers)
        for env, promise in _promises(store):
            trees.add(f"{env}@{promise['digest'][7:]}")
            keep.add(promise["digest"])
            with contextlib.suppress(AgentError):
                config, layers = store.image_blobs(promise["digest"])
                keep.add(config)
                keep.update(layers)
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
        removed, busy = [], []
        root = os.path.abspath(args.prefix_root)
        using = trees_in_use(root)
        for name in os.listdir(root) if os.path.isdir(root) else []:
            path = os.path.join(root, name)
            stale = ".partial-" in name or ("@" in name and name not in trees)
            stale = stale and not any(name.startswith(p) for p in spared)
            if stale and name in using:  # a job still runs on it: removed by a gc after it ends
                busy.append(name)
                continue
            if stale and not os.path.islink(path) and os.path.getmtime(path) < old:
                remove_tree(root, name)
                tree_records.forget(store, name)
                removed.append(name)
        return {
            "removed_blobs": blobs,
            "freed_bytes": freed,
            "removed_trees": sorted(removed),
            "in_use_trees": sorted(busy),
            "unreadable_state": bad,
        }


def trees_in_use(root: str) -> set[str]:
    """Names of the trees under ``root`` that a running process uses: its program, a mapped
    file (the interpreter, a shared library), its working directory or its root lies in one.

    Read from ``/proc`` (as root the agent sees every process; a process it may not read is
    skipped). A job started on an older digest keeps its tree this way after newer pushes."""
    top = root.rstrip("/") + "/"
    found: set[str] = set()

    def note(path: str) -> None:
        if path.startswith(top):
            found.add(path[len(top) :].split("/", 1)[0])

    for pid in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not pid.isdigit():
            continue
        for link in ("exe", "cwd", "root"):
            with contextlib.suppress(OSError):
                note(os.readlink(f"/proc/{pid}/{link}"))
        with (
            contextlib.suppress(OSError),
            open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as fh,
        ):
            for line in fh:
                fields = line.split(None, 5)
                if len(fields) == 6:
                    note(fields[5].strip())
    return found


def remove_tree(root: str, name: str) -> None:
    """Delete the tree ``root/name`` without following any link in it, whatever its depth."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        remove_tree_at(fd, name)
    finally:
        os.close(fd)


def _promises(store: Store) -> list[tuple[str, dict[str, Any]]]:
    """(env, promise) of every environment a push or rollback has claimed on this node."""
    where = store.path("epochs")
    out = []
    for name in sorted(os.listdir(where)) if os.path.isdir(where) else []:
        if not name.endswith(".json"):
            continue
        with contextlib.suppress(AgentError):  # a bad epoch record protects nothing, breaks nothing
            promise = epochs.load(store, name[:-5]).get("promise")
            if promise:
                out.append((name[:-5], promise))
    return out
