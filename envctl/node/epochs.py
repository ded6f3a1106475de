"""Per-environment generations on a node: who may change ENV next. Standard library only.

Every push and rollback of ENV takes a *ballot* ``(generation, token)`` before it changes
anything: the sender reads every node's ``epoch`` first, picks one more than the highest
generation it saw, and a fresh token (sender clock in ns + 64 random bits, so ties go to the
later sender). ``claim`` (in ``activate``) records the ballot as the node's *promise* when it is higher than any
the node has promised or switched by; every later step that changes ENV (prepare, switch,
restore, rollback) runs under the store lock and only while the promise is still that ballot
(compare and set): a newer operation that claimed the node meanwhile wins, and the older one
fails with ``kind: superseded`` naming the winner. Nothing expires and nothing is held: a sender
that dies leaves a promise the next operation simply outbids.

Layout (``STORE/epochs/ENV.json``)::

    {"env": ENV,
     "promise":  CLAIM | null,      # the highest ballot this node accepted for ENV
     "switched": CLAIM | null,      # the claim the current state record was switched under
     "undo": {"token", "state", "switched"} | null}   # what ``restore`` puts back, per token

    CLAIM = {"generation", "token", "op", "digest", "by", "at", "members": [NODE, ...]}

``members`` are the names (in the sender's inventory) of every node the operation was for, so
``status`` can tell a node that missed an operation from one that was never part of it. The state
record (``STORE/state/ENV.json``) gains only ``generation`` and ``token`` in its ``current`` and
``previous`` entries; a record without them predates generations (ballot ``(0, "")``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
from typing import TYPE_CHECKING, Any

from envctl.node.checks import MAX_JSON, parse_json, show
from envctl.node.store import AgentError, Store, check_digest, check_env, read_text, write_file

TOKEN = re.compile(r"[0-9]{19}-[0-9a-f]{16}")
MAX_GENERATION = 1 << 62
MAX_CLAIM_BYTES = MAX_JSON  # the members of 100,000 long node names, with room to spare
MAX_MEMBERS = 1_000_000
OPS = ("push", "rollback")

if TYPE_CHECKING:  # the agent runs on python3 >= 3.7: no subscripted builtins at run time
    Ballot = tuple[int, str]
NONE: Ballot = (0, "")


class Superseded(AgentError):
    """A newer operation holds the environment's promise; ``extra`` names it for the sender."""

    def __init__(self, env: str, holder: dict[str, Any] | None) -> None:
        who = describe(holder) if holder else "an operation this node has no record of"
        super().__init__(f"{env}: superseded by {who}", "superseded")
        self.extra = {"holder": summary(holder)}


def check_token(text: str) -> str:
    """A ballot's token: ``<19-digit ns clock>-<16 hex>``, nothing else."""
    if not TOKEN.fullmatch(text):
        raise AgentError(f"not a ballot token: {show(text)}", "input")
    return text


def check_generation(text: str) -> int:
    """A ballot's generation: a decimal integer from 1 up."""
    if not re.fullmatch(r"[0-9]{1,19}", text) or not 1 <= int(text) < MAX_GENERATION:
        raise AgentError(f"not a generation: {show(text)}", "input")
    return int(text)


def add_ballot_options(parser: argparse.ArgumentParser, required: bool) -> None:
    """``--generation G --token T``: the ballot an env-changing command runs under."""
    parser.add_argument("--generation", type=check_generation, required=required)
    parser.add_argument("--token", type=check_token, required=required)


def ballot_of(record: dict[str, Any] | None) -> Ballot:
    """The ballot of a claim or a state entry; ``(0, "")`` for none or one from before ballots."""
    if not record or not isinstance(record.get("generation"), int):
        return NONE
    return (int(record["generation"]), str(record.get("token", "")))


def describe(claim: dict[str, Any]) -> str:
    """``push 1700..-ab12 (generation 7) of sha256:0123456789ab by user@host``."""
    return "{} {} (generation {}) of {} by {}".format(
        claim.get("op", "operation"),
        claim.get("token", "?"),
        claim.get("generation", "?"),
        str(claim.get("digest", "?"))[:19],
        claim.get("by", "unknown"),
    )


def summary(claim: dict[str, Any] | None) -> dict[str, Any] | None:
    """A claim without its member list (which can be long), but with how many there are."""
    if not claim:
        return None
    out = {k: v for k, v in claim.items() if k != "members"}
    out["members_count"] = len(claim.get("members") or [])
    return out


def path(store: Store, env: str) -> str:
    """Where the epoch record of ``env`` lives."""
    return store.path("epochs", check_env(env) + ".json")


def load(store: Store, env: str) -> dict[str, Any]:
    """The epoch record of ``env`` (an empty one if none); a malformed one is an error for ENV."""
    text = read_text(path(store, env))
    empty: dict[str, Any] = {"env": env, "promise": None, "switched": None, "undo": None}
    if text is None:
        return empty
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        doc = None
    if not isinstance(doc, dict) or doc.get("env") != env:
        raise AgentError(f"{path(store, env)}: not an epoch record of {env}; remove it", "state")
    for key in ("promise", "switched"):
        claim = doc.get(key)
        if claim is not None and (not isinstance(claim, dict) or ballot_of(claim) == NONE):
            raise AgentError(f"{path(store, env)}: {key} is not a claim; remove the file", "state")
    return {**empty, **doc}


def save(store: Store, env: str, record: dict[str, Any]) -> None:
    """Replace the epoch record of ``env`` atomically."""
    os.makedirs(store.path("epochs"), exist_ok=True)
    write_file(path(store, env), json.dumps(record, sort_keys=True))


def floor(record: dict[str, Any], state: dict[str, Any] | None) -> Ballot:
    """The lowest ballot a new claim must beat: the promise, or the current switch if higher."""
    current = (state or {}).get("current")
    return max(ballot_of(record.get("promise")), ballot_of(current if isinstance(current, dict) else None))


def require(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """The claim ``args`` runs under, if it is still the node's promise for ENV; else Superseded."""
    record = load(store, args.env)
    promise = record.get("promise")
    if not isinstance(promise, dict) or ballot_of(promise) != (args.generation, args.token):
        raise Superseded(args.env, promise)
    return dict(promise)


def claim_request(data: bytes) -> dict[str, Any]:
    """The claim's request on stdin (op, digest, by, members), each field checked."""
    doc = parse_json(data, "claim's request (stdin)")
    if not isinstance(doc, dict):
        raise AgentError("claim: stdin is not a JSON object", "input")
    op, by, members = doc.get("op"), doc.get("by"), doc.get("members")
    if op not in OPS:
        raise AgentError(f"claim: op must be one of {', '.join(OPS)}", "input")
    if not isinstance(by, str) or len(by) > 256 or not by.isprintable():
        raise AgentError("claim: by must be a printable string of at most 256 characters", "input")
    if not isinstance(members, list) or len(members) > MAX_MEMBERS:
        raise AgentError("claim: members must be a list of node names", "input")
    for name in members:
        if not isinstance(name, str) or not 0 < len(name) <= 255 or not name.isprintable():
            raise AgentError("claim: every member must be a printable node name", "input")
    if not isinstance(doc.get("digest"), str):
        raise AgentError("claim: digest must be a string", "input")
    return {"op": op, "by": by, "members": members, "digest": check_digest(doc["digest"])}


def record_switch(store: Store, env: str, claim: dict[str, Any], old_state: dict[str, Any] | None) -> None:
    """Before a switch under ``claim``: remember it (with its members) and what undoes it."""
    record = load(store, env)
    undo = {"token": claim["token"], "state": old_state, "switched": record.get("switched")}
    save(store, env, {**record, "switched": claim, "undo": undo})


def take_undo(store: Store, env: str, token: str) -> dict[str, Any]:
    """What ``restore`` puts back for the switch made under ``token`` (and forget it)."""
    record = load(store, env)
    undo = record.get("undo")
    if not isinstance(undo, dict) or undo.get("token") != token:
        raise AgentError(f"{env}: no switch of this operation to undo here", "input")
    save(store, env, {**record, "switched": undo.get("switched"), "undo": None})
    return undo


def members_of(store: Store, env: str, state: dict[str, Any] | None) -> list[str] | None:
    """The members of the operation the current state of ``env`` was switched by, if known."""
    current = (state or {}).get("current")
    switched = load(store, env).get("switched")
    if not isinstance(current, dict) or not switched or ballot_of(switched) != ballot_of(current):
        return None
    return list(switched.get("members") or [])
