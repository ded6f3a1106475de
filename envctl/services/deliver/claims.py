"""The sender's side of the generation protocol (docs/nodes.md, ``envctl.core.generation``).

``read`` every node's epoch of the environment, pick ``next_ballot`` above all of them, then
``claim_all``: each node promises the environment to the ballot unless it already promised a
higher one, in which case this operation has lost before changing anything and learns the
winner. Every later step passes the ballot (``ballot_args``) and fails as ``superseded`` on a
node where a newer operation claimed it since (``lost_to`` names that one).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from envctl.core.generation import NO_BALLOT, Ballot, Claim, NodeEpoch, Switched
from envctl.core.node import NodeSpec
from envctl.core.transport import Transport
from envctl.errors import AgentError, EnvctlError, RemoteError
from envctl.services.cluster.fanout import Fanout
from envctl.services.deliver.nodeclient import NodeClient

#: the agent's error kind for a step whose ballot a newer operation outbid on that node
SUPERSEDED = "superseded"


def new_token() -> str:
    """A ballot token: this machine's clock in ns (ties go to the later sender) + 64 random bits."""
    return f"{time.time_ns():019d}-{secrets.token_hex(8)}"


def ballot_args(ballot: Ballot) -> list[str]:
    """The agent options that run a step under ``ballot``."""
    return ["--generation", str(ballot.generation), "--token", ballot.token]


def _ballot(node: str, doc: Any) -> Ballot:
    if not isinstance(doc, dict):
        raise RemoteError(node, "the envctl agent returned a malformed epoch record")
    generation, token = doc.get("generation", 0), doc.get("token", "")
    if not isinstance(generation, int) or isinstance(generation, bool) or not isinstance(token, str):
        raise RemoteError(node, "the envctl agent returned a malformed ballot")
    return Ballot(generation, token) if generation > 0 else NO_BALLOT


def parse_claim(node: str, doc: Any) -> Claim | None:
    """A claim as an agent reports it (a promise, a refusal's or a superseded step's holder)."""
    if doc is None:
        return None
    ballot = _ballot(node, doc)
    at = doc.get("at")
    return Claim(
        ballot,
        str(doc.get("op", "operation")),
        str(doc["digest"]) if isinstance(doc.get("digest"), str) else None,
        str(doc.get("by", "unknown")),
        float(at) if isinstance(at, (int, float)) and not isinstance(at, bool) else None,
    )


def parse_switched(node: str, doc: Any) -> Switched | None:
    """A state entry (current or previous) as the agent reports it."""
    if doc is None:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("digest"), str):
        raise RemoteError(node, "the envctl agent returned a malformed state entry")
    return Switched(doc["digest"], _ballot(node, doc))


def read(client: NodeClient, env: str) -> NodeEpoch:
    """One node's epoch of ``env``: its promise and what it runs."""
    doc = client.call("epoch", env)
    runtime = doc.get("runtime")
    return NodeEpoch(
        promise=parse_claim(client.node, doc.get("promise")),
        current=parse_switched(client.node, doc.get("current")),
        previous=parse_switched(client.node, doc.get("previous")),
        runtime=runtime if isinstance(runtime, str) else None,
    )


def claim(
    client: NodeClient, env: str, ballot: Ballot, op: str, digest: str, members: Sequence[str]
) -> Claim | None:
    """Claim ``env`` on one node; None when granted, else the claim that outranks ``ballot``."""
    request = json.dumps({"op": op, "digest": digest, "by": client.by, "members": list(members)})
    doc = client.call("claim", env, *ballot_args(ballot), stdin=request.encode())
    if doc.get("granted") is True:
        return None
    return parse_claim(client.node, doc.get("holder")) or Claim(NO_BALLOT, "operation", None, "unknown")


def holder(error: EnvctlError) -> Claim | None:
    """The operation that superseded a step, when ``error`` is such a failure."""
    cause = error if isinstance(error, AgentError) else error.__cause__
    if not isinstance(cause, AgentError) or cause.kind != SUPERSEDED:
        return None
    try:
        found = parse_claim(cause.node, cause.details.get("holder"))
    except RemoteError:
        found = None
    return found or Claim(NO_BALLOT, "operation", None, "unknown")


@dataclass
class Taken:
    """What claiming did: the nodes now promised to this ballot, those that could not be asked,
    and (when any node refused) the highest claim that beat this one."""

    granted: list[str] = field(default_factory=list)
    failed: dict[str, EnvctlError] = field(default_factory=dict)
    lost_to: Claim | None = None


def claim_all(
    fan: Fanout,
    client: Any,
    env: str,
    ballot: Ballot,
    op: str,
    digest: str,
    members: Sequence[str],
    only: Collection[str],
) -> Taken:
    """``claim`` on every node of ``only`` (``client(node, transport)`` makes each NodeClient)."""

    def one(node: NodeSpec, transport: Transport) -> Claim | None:
        return claim(client(node, transport), env, ballot, op, digest, members)

    taken = Taken()
    for name, answer in fan.run(one, only=only).items():
        if isinstance(answer, EnvctlError):
            taken.failed[name] = answer
        elif answer is None:
            taken.granted.append(name)
        elif taken.lost_to is None or answer.ballot > taken.lost_to.ballot:
            taken.lost_to = answer
    return taken
