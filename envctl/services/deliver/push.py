"""Push an OCI image to nodes: stage everywhere (only missing blobs), then activate.

Stage: one ``have`` round trip per node, then one stream of the missing blobs (resumed where an
earlier try stopped); the node verifies every blob before it enters its store, then prepares the
environment out of sight (unpacks the tree / loads the image under a versioned name) while other
nodes still receive. Activate, once every node is done: switch each prepared node, or with
``atomic`` switch only if every node prepared, undoing the switched ones if any switch fails.
Before staging, the push claims the environment on every node under a new ballot (``claims``):
every later step runs only while the node still promises it to this push, so of two pushes at
once only the newer can switch everywhere, and the older reports it lost and to which.
Every phase runs through the one fan-out, on the one connection per node opened first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from envctl.adapters import ledger
from envctl.adapters.oci_layout import OciImage
from envctl.core.delivery import EVENT_OUTCOME, Delivered, DeliveryReport, NotDelivered
from envctl.core.generation import Ballot, Claim, next_ballot
from envctl.core.group import GroupResult
from envctl.core.image_check import Platform
from envctl.core.node import NodeSpec
from envctl.core.transport import Connector, Transport
from envctl.errors import EnvctlError
from envctl.services.cluster.fanout import Fanout
from envctl.services.deliver import claims
from envctl.services.deliver import verify as proof
from envctl.services.deliver.gate import Gate
from envctl.services.deliver.nodeclient import Missing, NodeClient


class PushReporter(Protocol):
    """Progress sink; the CLI renders it, tests and --json use NullReporter."""

    def phase(self, name: str) -> None:
        """A phase starts (stage, activate)."""

    def node_started(self, node: str, total_bytes: int) -> None:
        """A node starts receiving ``total_bytes``."""

    def node_bytes(self, node: str, nbytes: int) -> None:
        """``nbytes`` more went to ``node``."""

    def node_finished(self, node: str, result: Delivered | NotDelivered) -> None:
        """A node is staged (or failed)."""


class NullReporter:
    """Reports nothing."""

    def phase(self, name: str) -> None:
        """A phase starts (stage, activate)."""

    def node_started(self, node: str, total_bytes: int) -> None:
        """A node starts receiving ``total_bytes``."""

    def node_bytes(self, node: str, nbytes: int) -> None:
        """``nbytes`` more went to ``node``."""

    def node_finished(self, node: str, result: Delivered | NotDelivered) -> None:
        """A node is staged (or failed)."""


#: The platform whose image a one-platform push reads first; a layout with other platforms goes
#: through ``platform_push``, which gives each node its own platform's manifest (from its facts).
NODE_PLATFORM = Platform("linux", "amd64")


class Stager(Protocol):
    """How the stage phase brings each node the blobs it lacks: ``direct`` from this machine
    (``DirectStager``), or through a relay tree or a registry (``services/deliver/stagers.py``
    builds the one ``--fanout`` names).

    ``begin`` runs once before any node stages (upload the image once, lay out a tree) with the
    nodes that will stage and, when the stager ``surveys``, each node's ``have`` answer (one
    ``have`` per node first: ``holders_of`` says which hold every blob, and ``stage`` need not
    ask again); ``stage`` then runs for each of them, in parallel,
    and raises ``NotDelivered`` for its node; ``end`` runs once after staging, failed or not,
    tears down what ``begin`` set up and returns what the report shows under ``fanout``.
    """

    name: str
    surveys: bool  # begin needs to know which nodes hold the whole image already

    def begin(
        self,
        image: OciImage,
        nodes: Sequence[NodeSpec],
        survey: Mapping[str, Held] | None = None,
    ) -> None:
        """Before any node stages."""

    def stage(self, client: NodeClient, image: OciImage, reporter: PushReporter) -> Delivered:
        """Bring ``client``'s node the blobs it lacks; raise ``NotDelivered``."""
        ...

    def end(self) -> dict[str, Any]:
        """After every node staged (or failed): tear down, and say what the report shows."""
        ...

    def parallel(self, requested: int, count: int) -> int:
        """How many nodes stage at once, given ``--parallel`` and the number staging."""
        ...


#: a node's ``have`` answer: the blobs it holds verified, and its partial sizes
Held = tuple[set[str], dict[str, int]]


class DirectStager:
    """Every node receives its missing blobs from this machine, over its own SSH connection."""

    name = "direct"
    surveys = False

    def begin(
        self,
        image: OciImage,
        nodes: Sequence[NodeSpec],
        survey: Mapping[str, Held] | None = None,
    ) -> None:
        """Nothing to set up."""

    def stage(
        self,
        client: NodeClient,
        image: OciImage,
        reporter: PushReporter,
        held: tuple[set[str], dict[str, int]] | None = None,
        start: float | None = None,
    ) -> Delivered:
        """Send the blobs the node lacks (``_stage``; ``held``: its ``have`` answer, if known)."""
        return _stage(client, image, reporter, held, start)

    def end(self) -> dict[str, Any]:
        """Nothing to tear down or add."""
        return {}

    def parallel(self, requested: int, count: int) -> int:
        """``--parallel`` as given."""
        return requested


@dataclass(frozen=True)
class PushOptions:
    """How to push."""

    env: str
    parallel: int = 8
    max_fail: int | None = None
    atomic: bool = False
    by: str = "unknown"
    lock_timeout: float = 600.0
    idle_timeout: float = 60.0
    stager: Stager = field(default_factory=DirectStager)
    fanout_why: str = "the default"  # why this stager (``core.fanout_mode.choose``), for the report
    verify: bool = False  # run the image's smoke check on every switched node (services/deliver/verify)
    gpu_nodes: frozenset[str] = field(default_factory=frozenset)  # verify: these get a kernel per framework


def who() -> str:
    """``user@host`` of whoever runs envctl, recorded on nodes and in the ledger."""
    import getpass
    import socket

    return f"{getpass.getuser()}@{socket.gethostname()}"


def _progress(staged: Delivered) -> dict[str, Any]:
    """What a staged node received, kept when a later phase fails or skips it."""
    return {
        "bytes_sent": staged.bytes_sent,
        "blobs_sent": staged.blobs_sent,
        "resumed_from": staged.resumed_from,
        "seconds": staged.seconds,
    }


def _stage(
    client: NodeClient,
    image: OciImage,
    reporter: PushReporter,
    held: tuple[set[str], dict[str, int]] | None = None,
    start: float | None = None,
) -> Delivered:
    """Send the blobs ``client``'s node lacks; a failure keeps the bytes that did arrive.
    ``held``: the node's ``have`` answer, when the caller asked already (at ``start``)."""
    start = time.monotonic() if start is None else start
    digest = image.manifest.digest
    try:
        present, partial = held if held is not None else client.have([b.digest for b in image.blobs])
    except EnvctlError as exc:
        raise NotDelivered.of(exc, digest) from exc
    missing = [
        Missing(
            b.digest,
            b.size,
            o if (o := partial.get(b.digest, 0)) < b.size else 0,
            image.blob_path(b.digest),
        )
        for b in image.blobs
        if b.digest not in present
    ]
    resumed = sum(m.offset for m in missing)
    reporter.node_started(client.node, sum(m.size - m.offset for m in missing))
    sent = 0

    def on_bytes(n: int) -> None:
        nonlocal sent
        sent += n
        reporter.node_bytes(client.node, n)

    try:
        if missing:
            client.receive(missing, on_bytes)
    except EnvctlError as exc:
        raise NotDelivered.of(exc, digest, bytes_sent=sent, resumed_from=resumed) from exc
    return Delivered(
        "ok",
        digest,
        bytes_sent=sent,
        blobs_sent=len(missing),
        resumed_from=resumed,
        seconds=time.monotonic() - start,
    )


def push(
    image: OciImage,
    nodes: Sequence[NodeSpec],
    pool: Connector,
    opts: PushOptions,
    reporter: PushReporter | None = None,
    refused: Mapping[str, EnvctlError] | None = None,
    preflight: Mapping[str, Any] | None = None,
    gate: Gate | None = None,
) -> DeliveryReport:
    """Deliver ``image`` as environment ``opts.env`` to every node; never raises per node.

    ``refused`` nodes (by the preflight) are failed before anything starts: they get no
    connection, no claim and no byte, and count against ``--max-fail`` / ``--atomic``. ``gate``
    is shared by the pushes of one fleet (``fleet_push``): one budget, one ``--atomic``.
    """
    rep = reporter or NullReporter()
    digest = image.manifest.digest
    refused = refused or {}

    def client(node: NodeSpec, transport: Transport) -> NodeClient:
        return NodeClient(
            transport, node, by=opts.by, lock_timeout=opts.lock_timeout, idle_timeout=opts.idle_timeout
        )

    with Fanout([n for n in nodes if n.name not in refused], pool, parallel=opts.parallel) as fan:
        # every connection first (the budget counts them), reading each node's epoch of the env
        reached = fan.run(lambda node, transport: claims.read(client(node, transport), opts.env))
        failed = {**reached.failed, **refused}
        gate = gate or Gate(1, opts.max_fail)
        budget = gate.budget
        budget.fail(len(failed))
        gate.wait()  # every push of a fleet counted its unreachable and refused nodes
        results: dict[str, Delivered | EnvctlError] = {
            name: NotDelivered.of(error, digest) for name, error in failed.items()
        }
        # Claim only when this push may activate: a push that will not switch must not outbid one
        # that would. A claim refused anywhere means a newer operation owns the env: stop here.
        ballot: Ballot | None = None
        lost = _Lost()
        targets: Collection[str] = reached.succeeded
        if not ((opts.atomic and budget.failures) or budget.exceeded()):
            ballot = next_ballot(reached.succeeded.values(), claims.new_token())
            members = [n.name for n in nodes]
            taken = claims.claim_all(fan, client, opts.env, ballot, "push", digest, members, targets)
            for name, error in taken.failed.items():
                budget.fail()
                results[name] = NotDelivered.of(error, digest)
            lost.set(taken.lost_to)
            targets = taken.granted if taken.lost_to is None else []
            for name in set(reached.succeeded) - set(taken.failed) - set(targets):
                results[name] = NotDelivered(lost.why("not staged"), status="skipped", digest=digest)

        def stage_one(node: NodeSpec, transport: Transport) -> Delivered:
            if budget.exceeded():
                raise NotDelivered("failure budget exceeded; not staged", status="skipped", digest=digest)
            agent = client(node, transport)
            try:
                staged = opts.stager.stage(agent, image, rep)
                try:
                    # Unpack / load now, while other nodes still receive: nothing is visible
                    # before the switch, and the switch finds the work done (prepare is idempotent).
                    ready = agent.call(
                        "prepare", opts.env, digest, *(claims.ballot_args(ballot) if ballot else [])
                    )
                except EnvctlError as exc:
                    lost.set(claims.holder(exc))
                    raise NotDelivered(
                        f"prepare: {exc.message}", exc.hint, digest=digest, **_progress(staged)
                    ) from exc
            except NotDelivered as failed:
                budget.fail()
                rep.node_finished(node.name, failed)
                raise
            rep.node_finished(node.name, staged)
            # why prepare unpacked the tree again: the repair, should the switch find nothing to do
            rebuilt = ready.get("rebuilt")
            return replace(staged, repaired=str(rebuilt) if rebuilt else None)

        rep.phase("stage")
        started = time.monotonic()
        stager = opts.stager
        staging_nodes = [n for n in nodes if n.name in targets]
        fanout: dict[str, Any] = {"mode": stager.name, "why": opts.fanout_why}
        staging: GroupResult[Delivered] = GroupResult({})
        try:
            if staging_nodes:
                survey = _survey(fan, client, image, targets) if stager.surveys else {}
                stager.begin(image, staging_nodes, survey)
            staging = fan.run(
                stage_one, only=targets, parallel=stager.parallel(opts.parallel, len(staging_nodes))
            )
        except EnvctlError as exc:  # the stager could not start (a registry refused the upload...)
            for n in staging_nodes:
                budget.fail()
                results[n.name] = NotDelivered.of(exc, digest)
        finally:
            fanout.update(stager.end() if staging_nodes else {})
        results.update(staging)
        gate.wait()  # every push of a fleet staged: the decision below sees all their failures

        rep.phase("activate")
        staged_at = time.monotonic()
        staged = staging.succeeded
        why = None
        if lost.claim is not None:
            why = lost.why("not activated")
        elif ballot is None or (opts.atomic and budget.failures > 0) or budget.exceeded():
            why = "not activated: " + (
                "another node failed (--atomic)" if opts.atomic else "failure budget exceeded (--max-fail)"
            )
        if why is not None:
            for name, done in staged.items():
                results[name] = NotDelivered(why, status="skipped", digest=digest, **_progress(done))
        else:
            assert ballot is not None
            results.update(_activate(fan, client, staged, opts, digest, ballot, lost))
        timings = {"stage": staged_at - started, "activate": time.monotonic() - staged_at}
        if opts.verify:
            rep.phase("verify")
        switched_at = time.monotonic()
        verified, undone = proof.after_switch(
            fan, client, results, staged, digest, ballot, gate, env=opts.env, atomic=opts.atomic,
            verify=opts.verify, gpus=opts.gpu_nodes,
        )  # fmt: skip
        results.update(undone)
        if opts.verify:
            timings["verify"] = time.monotonic() - switched_at
    ordered = GroupResult({n.name: results[n.name] for n in nodes})
    report = DeliveryReport(
        "push", opts.env, digest, ordered, timings, ballot, lost.claim, preflight, fanout, verify=verified
    )
    _record(report, image)
    return report


def holders_of(image: OciImage, survey: Mapping[str, Held] | None) -> frozenset[str]:
    """The surveyed nodes that hold every blob of ``image``, verified."""
    digests = {b.digest for b in image.blobs}
    return frozenset(n for n, (present, _) in (survey or {}).items() if digests <= present)


def _survey(
    fan: Fanout, client: Callable[[NodeSpec, Transport], NodeClient], image: OciImage, only: Collection[str]
) -> dict[str, Held]:
    """Each node's ``have`` answer (its verified blobs, its partials) among ``only``. A node that
    cannot say is left out: it holds nothing as far as the plan goes, and its stage says why."""
    digests = [b.digest for b in image.blobs]
    asked = fan.run(lambda node, transport: client(node, transport).have(digests), only=only)
    return dict(asked.succeeded)


class _Lost:
    """The newest operation that outbid this one on some node, if any (shared by the threads)."""

    def __init__(self) -> None:
        self.claim: Claim | None = None
        self._lock = threading.Lock()

    def set(self, claim: Claim | None) -> None:
        with self._lock:
            if claim is not None and (self.claim is None or claim.ballot > self.claim.ballot):
                self.claim = claim

    def why(self, what: str) -> str:
        return f"{what}: {self.claim.describe() if self.claim else 'a newer operation'} took the env over"


def _activate(
    fan: Fanout,
    client: Callable[[NodeSpec, Transport], NodeClient],
    staged: dict[str, Delivered],
    opts: PushOptions,
    digest: str,
    ballot: Ballot,
    lost: _Lost,
) -> dict[str, Delivered | EnvctlError]:
    """Switch every staged node under ``ballot``; with ``atomic``, switch the others back if one
    switch fails (only where the node still promises the env to this push)."""
    under = claims.ballot_args(ballot)

    def switch(node: NodeSpec, transport: Transport) -> Delivered:
        done = staged[node.name]
        try:
            doc = client(node, transport).call("switch", opts.env, digest, *under)
        except EnvctlError as exc:
            lost.set(claims.holder(exc))
            raise NotDelivered.of(exc, digest, **_progress(done)) from exc
        prev = (doc.get("old") or {}).get("current") or {}
        repaired = doc.get("repaired") or (None if doc["changed"] else done.repaired)
        changed = bool(doc["changed"] or done.blobs_sent or repaired)
        return replace(
            done,
            status="ok" if changed else "unchanged",
            previous=prev.get("digest"),
            generation=ballot.generation,
            repaired=str(repaired) if repaired else None,
        )

    switched = fan.run(switch, only=staged)
    out: dict[str, Delivered | EnvctlError] = dict(switched.items())
    if not (opts.atomic and switched.failed):
        return out
    done = switched.succeeded

    def restore(node: NodeSpec, transport: Transport) -> None:
        try:
            client(node, transport).call("restore", opts.env, *under)
        except EnvctlError as exc:
            raise NotDelivered(
                f"undo failed: {exc.message}", exc.hint, digest=digest, **_progress(done[node.name])
            ) from exc

    for name, undone in fan.run(restore, only=done).items():
        out[name] = (
            undone
            if isinstance(undone, EnvctlError)
            else NotDelivered(
                "switched back: another node failed to switch (--atomic)",
                status="skipped",
                digest=digest,
                **_progress(done[name]),
            )
        )
    return out


def _record(report: DeliveryReport, image: OciImage) -> None:
    details = report.as_json()
    details["image"] = str(image.root)
    ledger.record(
        report.operation, report.digest or "", sorted(report.nodes), EVENT_OUTCOME[report.outcome], details
    )
