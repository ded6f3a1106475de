"""Prove an environment by running it: the image's smoke check on every node, in its runtime.

``envctl verify -i INV ENV`` and ``push --verify`` (``after_switch``, push's last phase) both ask
each node's agent to run ``smoke`` (``envctl.node.smoke``): import every package of the current
environment inside the node's runtime (a container of the loaded image for docker / podman, the
unpacked tree chrooted for prefix) and, on a node whose facts (doctor's, ``facts_of``) list GPUs,
a tiny kernel per framework. Everything runs through the one fan-out; the verdicts are pure
(``envctl.core.verification``). Under ``--atomic`` a failed check switches every node of the push
(every variant of a fleet, through the ``Gate``) back to what it ran before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from envctl.adapters import ledger
from envctl.core.delivery import EVENT_OUTCOME, Delivered, NotDelivered
from envctl.core.generation import Ballot
from envctl.core.group import GroupResult
from envctl.core.node import NodeSpec
from envctl.core.transport import Connector, Transport
from envctl.core.verification import NotVerified, Verified, VerifyReport, judge
from envctl.errors import AgentError, EnvctlError
from envctl.services.cluster.fanout import Fanout
from envctl.services.deliver import claims
from envctl.services.deliver.gate import Gate
from envctl.services.deliver.nodeclient import NodeClient
from envctl.services.doctor.doctor import facts_of

TIMEOUT = 600.0  # seconds one node's check may run (the agent kills it after)

#: what to do about a check the agent could not run, by the agent's error kind
_HINTS = {
    "absent": "push the environment to the node first (envctl push)",
    "drift": "`envctl status` shows what is there; push again to repair it",
    "unsupported": "give the node a docker, podman or prefix runtime in the inventory",
    "timeout": "an import hangs on the node: run the environment there by hand to see which",
    "smoke": "the environment's python did not run: see the message; rebuild or push again",
}


def gpu_nodes(
    nodes: Sequence[NodeSpec], pool: Connector, parallel: int = 16, *, fan: Fanout | None = None
) -> frozenset[str]:
    """The nodes whose facts (doctor's cache, else asked, through ``fan`` when given) list GPUs:
    they get a kernel per framework."""
    facts = facts_of(nodes, pool, parallel=parallel, fan=fan)
    return frozenset(name for name, f in facts.succeeded.items() if f.gpus)


def check(agent: NodeClient, env: str, digest: str | None, gpus: bool, timeout: float = TIMEOUT) -> Verified:
    """Run the smoke check of ``env`` on ``agent``'s node (which must run ``digest``, when given)."""
    args = [env, "--timeout", f"{timeout:g}"]
    args += ["--digest", digest] if digest else []
    args += ["--gpus"] if gpus else []
    start = time.monotonic()
    try:
        answer = agent.call("smoke", *args)
    except AgentError as exc:
        hint = _HINTS.get(exc.kind, exc.hint)
        raise NotVerified(f"verify: {exc.message}", hint, seconds=time.monotonic() - start) from exc
    except EnvctlError as exc:
        raise NotVerified.of(exc, time.monotonic() - start) from exc
    verdict = judge(answer, env, agent.node, _seconds(answer, time.monotonic() - start))
    if isinstance(verdict, NotVerified):
        raise verdict
    return verdict


def _seconds(answer: dict[str, Any], fallback: float) -> float:
    value = answer.get("seconds")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else fallback


def verify(
    env: str,
    nodes: Sequence[NodeSpec],
    pool: Connector,
    *,
    gpus: Collection[str] | None = None,
    parallel: int = 8,
    timeout: float = TIMEOUT,
) -> VerifyReport:
    """``envctl verify``: every node's current ``env`` run and checked; recorded in the ledger.

    ``gpus`` None: the nodes whose facts list GPUs, read over the same connections as the checks,
    so a node that cannot be reached is dialled once and reported once, by its check.
    """
    with Fanout(nodes, pool, parallel=parallel) as fan:
        on_gpus = frozenset(gpus) if gpus is not None else gpu_nodes(nodes, pool, parallel, fan=fan)

        def one(node: NodeSpec, transport: Transport) -> Verified:
            return check(NodeClient(transport, node), env, None, node.name in on_gpus, timeout)

        found = fan.run(one)
    # an unreachable node's entry is an error of the fan-out: the same per-node shape as the rest
    report = VerifyReport(env, GroupResult({n: _as_not_verified(v) for n, v in found.items()}))
    ledger.record("verify", env, [n.name for n in nodes], EVENT_OUTCOME[report.outcome], report.as_json())
    return report


def _as_not_verified(value: Verified | EnvctlError) -> Verified | EnvctlError:
    return NotVerified.of(value) if isinstance(value, EnvctlError) else value


def _progress(done: Delivered) -> dict[str, Any]:
    return {
        "bytes_sent": done.bytes_sent,
        "blobs_sent": done.blobs_sent,
        "resumed_from": done.resumed_from,
        "seconds": done.seconds,
    }


def after_switch(
    fan: Fanout,
    client: Callable[[NodeSpec, Transport], NodeClient],
    results: dict[str, Delivered | EnvctlError],
    staged: Collection[str],
    digest: str,
    ballot: Ballot | None,
    gate: Gate,
    *,
    env: str,
    atomic: bool,
    verify: bool,
    gpus: Collection[str] = (),
    timeout: float = TIMEOUT,
) -> tuple[GroupResult[Verified] | None, dict[str, Delivered | EnvctlError]]:
    """push's last phase: with ``verify``, check every node that now runs ``digest``; then, under
    ``atomic``, when a node of this push (or of any push sharing ``gate``) failed after staging,
    switch every node this push switched back. Returns the checks (None without ``verify``) and
    the node entries that changed."""
    switched = [n for n in staged if isinstance(results.get(n), Delivered)]
    verified: GroupResult[Verified] | None = None
    if verify:

        def one(node: NodeSpec, transport: Transport) -> Verified:
            return check(client(node, transport), env, digest, node.name in gpus, timeout)

        found = fan.run(one, only=switched) if switched and ballot is not None else GroupResult({})
        verified = GroupResult({n: _as_not_verified(v) for n, v in found.items()})
    failed_here = any(not isinstance(results.get(n), Delivered) for n in staged)
    failed_here = failed_here or bool(verified is not None and verified.failed)
    anywhere = gate.settle(failed_here)  # every push of the fleet says how it went, then all decide
    if not (atomic and anywhere and switched and ballot is not None):
        return verified, {}
    bad = sorted(verified.failed) if verified is not None else []
    why = f"verify failed on {', '.join(bad)}" if bad else "a node of another variant failed"
    under = claims.ballot_args(ballot)

    def restore(node: NodeSpec, transport: Transport) -> None:
        client(node, transport).call("restore", env, *under)

    out: dict[str, Delivered | EnvctlError] = {}
    for name, undone in fan.run(restore, only=switched).items():
        done = results[name]
        assert isinstance(done, Delivered)
        own = verified.get(name) if verified is not None else None
        if isinstance(undone, EnvctlError):
            out[name] = NotDelivered(
                f"undo failed: {undone.message}", undone.hint, digest=digest, **_progress(done)
            )
        elif isinstance(own, EnvctlError):
            out[name] = NotDelivered(
                f"{own.message}; switched back (--atomic)", own.hint, digest=digest, **_progress(done)
            )
        else:
            out[name] = NotDelivered(
                f"switched back: {why} (--atomic)", status="skipped", digest=digest, **_progress(done)
            )
    return verified, out
