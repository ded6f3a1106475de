"""The agent's activation side: claim an environment, prepare it (unpack / load), make it
current, undo.

``epoch`` reports what a sender needs to pick a ballot and ``claim`` promises the environment to
it (the protocol is in ``epochs``). Every command here that changes ENV runs under the store lock
and under a ballot the node still promises: a newer push or rollback that claimed the node
meanwhile makes it fail as ``superseded``. ``switch`` flips the runtime's pointer, then writes the
state record; the node keeps what undoes it, which ``restore`` (``push --atomic``) puts back.
Switching to the digest that is already current verifies it first (symlink, tree, image tag) and
repairs what is wrong, so a re-push is never "unchanged" over a broken environment.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import time
from typing import Any

from envctl.node import epochs, trees
from envctl.node.checks import manifest_blobs, read_stdin
from envctl.node.runtimes import docker_load, flip, prefix_dir
from envctl.node.state import actual, load_state
from envctl.node.store import AgentError, Store, write_file
from envctl.node.unpack_policy import limits_of


def env_prefix(config: Any) -> str | None:
    """Where an envctl image keeps its environment (label ``dev.envctl.env.prefix``), or None
    for any other image (it is unpacked as it is, with no host view)."""
    labels = ((config or {}).get("config") or {}).get("Labels") if isinstance(config, dict) else None
    prefix = labels.get("dev.envctl.env.prefix") if isinstance(labels, dict) else None
    if isinstance(prefix, str) and prefix.startswith("/") and len(prefix) < 4096 and "\0" not in prefix:
        return prefix
    return None


def prepare(store: Store, args: argparse.Namespace) -> tuple[dict[str, Any], str | None]:
    """Make the environment ready without making it current (unpack / load); idempotent.

    Returns what the state record keeps (``path`` and ``fingerprint``, or ``image_id``) and why
    a prefix tree was unpacked (None when a verified one was reused)."""
    manifest = store.read_json_blob(args.manifest)
    config, layers = manifest_blobs(manifest, args.manifest)
    blobs = [config, *layers]
    missing = [d for d in blobs if not store.verified(d)]
    if missing:
        shown = " ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise AgentError(f"blobs missing or corrupt in the store: {shown}", "missing")
    if args.runtime in ("docker", "podman"):
        return {"image_id": docker_load(store, args, manifest)}, None
    if args.runtime == "prefix":
        target = prefix_dir(args, args.env, args.manifest)
        done = trees.ensure(
            store,
            args.env,
            args.manifest,
            [store.blob(d) for d in layers],
            target,
            limits_of(args),
            env_prefix(store.read_json_blob(config)),
        )
        info = {"path": done["path"], "fingerprint": done["fingerprint"]}
        if done["host"] is True:  # ENV then names the host view: ENV/bin/python runs from the host
            info["host"] = True
        return info, done["rebuilt"]
    return {}, None


def switch_to(
    store: Store,
    args: argparse.Namespace,
    record: dict[str, Any],
    rebuilt: str | None,
    claim: dict[str, Any],
) -> dict[str, Any]:
    """Make ``record`` current under ``claim`` (flip, then write state).

    When ``record``'s digest is already current, the environment is checked first: nothing is
    flipped if it is intact, and it is flipped again (the tree already repaired by ``prepare``)
    if not; ``repaired`` then says what was wrong. The generation is recorded either way."""
    old = load_state(store, args.env)
    current = old.get("current") if old else None
    ballot = {"generation": claim["generation"], "token": claim["token"]}
    same = (
        isinstance(current, dict)
        and current.get("digest") == record["digest"]
        and (old or {}).get("runtime") == args.runtime
    )
    repaired = None
    if same:
        assert old is not None and isinstance(current, dict)
        repaired = rebuilt or actual(store, copy.copy(args), old)["drift"]
        if repaired is None:
            record = current  # intact: only the generation moves on
        previous = old.get("previous")
    else:
        previous = current
    record = {**record, **ballot}
    epochs.record_switch(store, args.env, claim, old)
    if not same or repaired:
        flip(args, args.env, record)
    new = {"env": args.env, "runtime": args.runtime, "current": record, "previous": previous}
    write_file(store.path("state", args.env + ".json"), json.dumps(new, sort_keys=True))
    return {"changed": not same or bool(repaired), "repaired": repaired, "state": new, "old": old}


def cmd_prepare(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Prepare under the store lock (and, given a ballot, only while it is still promised)."""
    with store.locked(args.lock_timeout, "prepare " + args.env):
        if args.generation is not None:
            epochs.require(store, args)
        info, rebuilt = prepare(store, args)
        return {**info, "rebuilt": rebuilt}


def cmd_switch(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Prepare (if not yet) and switch ENV to MANIFEST, under the lock and the ballot."""
    with store.locked(args.lock_timeout, "switch " + args.env):
        claim = epochs.require(store, args)
        info, rebuilt = prepare(store, args)
        record = {"digest": args.manifest, "when": time.time(), "by": args.by, **info}
        return switch_to(store, args, record, rebuilt, claim)


def cmd_restore(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Undo this ballot's switch: put back the state the node kept when it switched (never one
    sent to it)."""
    with store.locked(args.lock_timeout, "restore " + args.env):
        epochs.require(store, args)
        old = epochs.take_undo(store, args.env, args.token)["state"]
        flip(args, args.env, old["current"] if old else None)
        path = store.path("state", args.env + ".json")
        if old is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        else:
            write_file(path, json.dumps(old, sort_keys=True))
        return {"state": old}


def cmd_rollback(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Switch ENV back to ``--to``, its previous digest (which becomes the new previous).

    ``--to`` may also be the current digest (the node is there already: verified, repaired if
    need be, ``changed`` false); anything else is refused, so every node goes to one digest."""
    with store.locked(args.lock_timeout, "rollback " + args.env):
        claim = epochs.require(store, args)
        state = load_state(store, args.env)
        current = (state or {}).get("current")
        previous = (state or {}).get("previous")
        if not state or not current or (current["digest"] != args.to and not previous):
            raise AgentError(f"{args.env} has no previous version to roll back to", "input")
        if args.to not in (current["digest"], previous and previous["digest"]):
            assert previous is not None
            raise AgentError(
                "{} here is {} (before it {}), not {}".format(
                    args.env, current["digest"][:19], previous["digest"][:19], args.to[:19]
                ),
                "input",
            )
        args.runtime, args.manifest = state["runtime"], args.to
        info, rebuilt = prepare(store, args)
        record = {"digest": args.manifest, "when": time.time(), "by": args.by, **info}
        return switch_to(store, args, record, rebuilt, claim)


def cmd_epoch(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """What a sender needs to pick a ballot (and a rollback target): promise, current, previous."""
    record = epochs.load(store, args.env)
    state = load_state(store, args.env) or {}

    def entry(key: str) -> dict[str, Any] | None:
        rec = state.get(key)
        if not isinstance(rec, dict):
            return None
        generation, token = epochs.ballot_of(rec)
        return {"digest": rec.get("digest"), "generation": generation, "token": token}

    return {
        "env": args.env,
        "promise": epochs.summary(record.get("promise")),
        "current": entry("current"),
        "previous": entry("previous"),
        "runtime": state.get("runtime"),
    }


def cmd_claim(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Promise ENV to the ballot if it beats every ballot seen here; else name the holder.

    A refusal is an answer, not an error: ``{"granted": false, "holder": CLAIM}``."""
    request = epochs.claim_request(read_stdin(epochs.MAX_CLAIM_BYTES))
    with store.locked(args.lock_timeout, "claim " + args.env):
        record = epochs.load(store, args.env)
        ballot = (args.generation, args.token)
        if ballot <= epochs.floor(record, load_state(store, args.env)):
            holder = record.get("promise")
            return {"granted": False, "holder": epochs.summary(holder)}
        claim = {"generation": ballot[0], "token": ballot[1], "at": time.time(), **request}
        epochs.save(store, args.env, {**record, "promise": claim})
        return {"granted": True, "holder": None}
