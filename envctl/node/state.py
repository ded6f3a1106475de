"""The agent's state records: what envctl activated per environment, and what is really active.

``state`` compares the record with the runtime (a prefix's symlink and file fingerprint, an
engine's image id, the store's blobs) and reports any drift; ``--verify`` also rehashes the blobs
and every file of a prefix tree against the record made when it was unpacked (``trees``).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from envctl.node import epochs, trees, unpack
from envctl.node.runtimes import image_id
from envctl.node.store import AgentError, Store, check_env, read_text, verify_manifest


def load_state(store: Store, env: str) -> dict[str, Any] | None:
    """The state record of ``env``, or None if envctl never activated it here."""
    text = read_text(store.path("state", check_env(env) + ".json"))
    return None if text is None else dict(json.loads(text))


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
        bad = (trees.load_record(store, env, current["digest"]) or {}).get("bad")
        if bad:  # found by an earlier ``status --verify``; the next push or rollback repairs it
            return {"actual": current["digest"], "drift": str(bad)}
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
                tree = None
                if not bad and state and state["runtime"] == "prefix":
                    where = os.path.join(
                        os.path.abspath(args.prefix_root), trees.tree_name(name, current["digest"])
                    )
                    tree = trees.verify_content(store, name, current["digest"], where)
            if bad:
                out[name]["drift"] = f"{len(bad)} corrupt blob(s) in the store, removed: re-push"
            elif tree:
                out[name]["drift"] = f"{tree}: re-push or roll back to repair it"
        if args.members and out[name] is not None:
            try:
                out[name]["members"] = epochs.members_of(store, name, state)
            except AgentError:  # a bad epoch record: no members known, the other envs unharmed
                out[name]["members"] = None
    return {"envs": out}
