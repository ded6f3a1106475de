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
from envctl.node.checks import AgentError, check_record, show
from envctl.node.runtimes import RUNTIMES, image_id, link_target
from envctl.node.store import Store, check_env, read_text, verify_manifest


def check_state(doc: Any, env: str, where: str) -> dict[str, Any]:
    """A complete state record of ``env``: its name, a runtime, and current / previous records
    (each None or with a digest). Keys added later pass untouched."""
    if not isinstance(doc, dict):
        raise AgentError(f"{where}: expected a JSON object, got {type(doc).__name__}", "state")
    if doc.get("env") != env:
        raise AgentError(f"{where}: env is {show(doc.get('env'))}, expected {env!r}", "state")
    if doc.get("runtime") not in RUNTIMES:
        raise AgentError(f"{where}: runtime is {show(doc.get('runtime'))}, not one of {RUNTIMES}", "state")
    for key in ("current", "previous"):
        if doc.get(key) is not None:
            try:
                check_record(doc[key], f"{where}: {key}")
            except AgentError as exc:
                raise AgentError(str(exc), "state") from None
    return doc


def load_state(store: Store, env: str) -> dict[str, Any] | None:
    """The state record of ``env``, or None if envctl never activated it here; AgentError
    (kind ``state``) naming the file when it is not a complete record of ``env``."""
    path = store.path("state", check_env(env) + ".json")
    text = read_text(path)
    if text is None:
        return None
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise AgentError(f"state file {path} is not valid JSON: {show(str(exc))}", "state") from None
    return check_state(doc, env, f"state file {path}")


def state_names(store: Store) -> list[str]:
    """The environment of every state file (names as found: a bad one is reported, not skipped)."""
    directory = store.path("state")
    names = os.listdir(directory) if os.path.isdir(directory) else []
    return sorted(n[:-5] for n in names if n.endswith(".json"))


def unreadable(name: str, error: str) -> dict[str, Any]:
    """What ``state`` reports for an environment whose state file cannot be used: drift."""
    return {
        "env": name,
        "runtime": None,
        "current": None,
        "previous": None,
        "actual": None,
        "drift": f"unreadable state: {error}",
    }


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
        if target != link_target(env, current):
            return {"actual": None, "drift": f"{link} points to {show(target)}"}
        tree = os.path.join(os.path.dirname(link), trees.tree_name(env, current["digest"]))
        if unpack.fingerprint(tree) != current.get("fingerprint"):
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
    names = list(args.envs) or state_names(store)
    out: dict[str, Any] = {}
    for name in names:  # one by one: a bad state file is reported for its environment alone
        key = name if len(name) <= 200 else name[:200] + "..."
        try:
            state = load_state(store, name)
            out[key] = None if state is None else {**state, **actual(store, args, state)}
        except (AgentError, OSError) as exc:
            out[key] = unreadable(key, str(exc))
            continue
        current = (state or {}).get("current")
        if args.verify and current and not out[key]["drift"]:
            with store.locked(args.lock_timeout, "verify"):
                bad = verify_manifest(store, current["digest"])
                tree = None
                if not bad and state and state["runtime"] == "prefix":
                    where = os.path.join(
                        os.path.abspath(args.prefix_root), trees.tree_name(name, current["digest"])
                    )
                    tree = trees.verify_content(store, name, current["digest"], where)
            if bad:
                out[key]["drift"] = f"{len(bad)} corrupt blob(s) in the store, removed: re-push"
            elif tree:
                out[key]["drift"] = f"{tree}: re-push or roll back to repair it"
        if args.members and out[key] is not None:
            try:
                out[key]["members"] = epochs.members_of(store, name, state)
            except AgentError:  # a bad epoch record: no members known, the other envs unharmed
                out[key]["members"] = None
    return {"envs": out}
