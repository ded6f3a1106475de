"""The agent's activation side: prepare an environment (unpack / load), make it current, undo.

``switch`` flips the runtime's pointer, then writes the state record, and reports the old state:
``push --atomic`` hands it back to ``restore`` on every switched node when another node fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from typing import Any

from envctl.node import unpack
from envctl.node.checks import manifest_blobs, parse_json, read_stdin
from envctl.node.runtimes import docker_load, flip, prefix_dir
from envctl.node.state import check_state, load_state
from envctl.node.store import AgentError, Store, write_file


def prepare(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Make the environment ready without making it current (unpack / load); idempotent."""
    manifest = store.read_json_blob(args.manifest)
    config, layers = manifest_blobs(manifest, args.manifest)
    blobs = [config, *layers]
    missing = [d for d in blobs if not store.verified(d)]
    if missing:
        shown = " ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise AgentError(f"blobs missing or corrupt in the store: {shown}", "missing")
    if args.runtime in ("docker", "podman"):
        return {"image_id": docker_load(store, args, manifest)}
    if args.runtime == "prefix":
        target = prefix_dir(args, args.env, args.manifest)
        if not os.path.isdir(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            unpack.unpack_layers([store.blob(d) for d in layers], target, unpack.limits_of(args))
        return {"path": target, "fingerprint": unpack.fingerprint(target)}
    return {}


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
    data = read_stdin()
    old = parse_json(data, "restore's state (stdin)") if data.strip() else None
    if old is not None:  # a complete record of this environment, or nothing is written
        check_state(old, args.env, "restore's state (stdin)")
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
