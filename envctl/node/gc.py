"""The agent's ``gc``: delete what no environment's current or previous version needs.

The digest an environment's promise names (a push or rollback that claimed the node and may not
have switched yet, ``epochs``) is kept too, whatever its age, with its tree.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from typing import Any

from envctl.node import epochs
from envctl.node import trees as tree_records
from envctl.node.state import load_state
from envctl.node.store import AgentError, Store


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
        for env, promise in _promises(store):
            trees.add(f"{env}@{promise['digest'][7:]}")
            keep.add(promise["digest"])
            with contextlib.suppress(AgentError, KeyError, ValueError, TypeError):
                manifest = store.read_json_blob(promise["digest"])
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
                tree_records.forget(store, name)
                removed.append(name)
        return {"removed_blobs": blobs, "freed_bytes": freed, "removed_trees": sorted(removed)}


def _promises(store: Store) -> list[tuple[str, dict[str, Any]]]:
    """(env, promise) of every environment a push or rollback has claimed on this node."""
    where = store.path("epochs")
    out = []
    for name in sorted(os.listdir(where)) if os.path.isdir(where) else []:
        if not name.endswith(".json"):
            continue
        with contextlib.suppress(AgentError):
            promise = epochs.load(store, name[:-5]).get("promise")
            if promise:
                out.append((name[:-5], promise))
    return out
