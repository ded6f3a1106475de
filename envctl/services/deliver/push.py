"""Push an OCI image to nodes: stage everywhere (only missing blobs), then activate.

Stage: one ``have`` round trip per node, then one stream of the missing blobs (resumed where an
earlier try stopped); the node verifies every blob before it enters its store, then prepares the
environment out of sight (unpacks the tree / loads the image under a versioned name) while other
nodes still receive. Activate, once every node is done: switch each prepared node, or with
``atomic`` switch only if every node prepared, undoing the switched ones if any switch fails.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol

from envctl.adapters import ledger
from envctl.adapters.oci_layout import OciImage
from envctl.core.delivery import Connect, DeliveryReport, NodeResult, NodeTarget
from envctl.core.image_check import Platform
from envctl.errors import EnvctlError
from envctl.services.deliver.nodeclient import Missing, NodeClient


class PushReporter(Protocol):
    """Progress sink; the CLI renders it, tests and --json use NullReporter."""

    def phase(self, name: str) -> None:
        """A phase starts (stage, activate)."""

    def node_started(self, node: str, total_bytes: int) -> None:
        """A node starts receiving ``total_bytes``."""

    def node_bytes(self, node: str, nbytes: int) -> None:
        """``nbytes`` more went to ``node``."""

    def node_finished(self, node: str, result: NodeResult) -> None:
        """A node is staged (or failed)."""


class NullReporter:
    """Reports nothing."""

    def phase(self, name: str) -> None:
        """A phase starts (stage, activate)."""

    def node_started(self, node: str, total_bytes: int) -> None:
        """A node starts receiving ``total_bytes``."""

    def node_bytes(self, node: str, nbytes: int) -> None:
        """``nbytes`` more went to ``node``."""

    def node_finished(self, node: str, result: NodeResult) -> None:
        """A node is staged (or failed)."""


#: The platform of every node today, so the manifest a multi-platform layout is pushed as. Kept
#: as one named choice (not a default deep in the reader) for when nodes say their own platform.
NODE_PLATFORM = Platform("linux", "amd64")


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


@dataclass
class _Node:
    client: NodeClient | None
    result: NodeResult
    staged: bool = False
    old_state: Any = None


def who() -> str:
    """``user@host`` of whoever runs envctl, recorded on nodes and in the ledger."""
    import getpass
    import socket

    return f"{getpass.getuser()}@{socket.gethostname()}"


@contextmanager
def connected(
    targets: Sequence[NodeTarget], connect: Connect, parallel: int, opts: PushOptions
) -> Iterator[dict[str, NodeClient | EnvctlError]]:
    """Open every node in parallel; a node that cannot be reached maps to its error."""

    def open_one(t: NodeTarget) -> NodeClient | EnvctlError:
        try:
            return NodeClient(
                connect(t),
                t,
                by=opts.by,
                lock_timeout=opts.lock_timeout,
                idle_timeout=opts.idle_timeout,
            )
        except EnvctlError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        clients = dict(zip([t.name for t in targets], pool.map(open_one, targets), strict=True))
    try:
        yield clients
    finally:
        for c in clients.values():
            if isinstance(c, NodeClient):
                c.transport.close()


def _stage(client: NodeClient, image: OciImage, reporter: PushReporter) -> NodeResult:
    start = time.monotonic()
    try:
        present, partial = client.have([b.digest for b in image.blobs])
    except EnvctlError as exc:
        raise _Staging(exc, 0, 0) from exc
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
    total = sum(m.size - m.offset for m in missing)
    reporter.node_started(client.node, total)
    sent = 0

    def on_bytes(n: int) -> None:
        nonlocal sent
        sent += n
        reporter.node_bytes(client.node, n)

    try:
        if missing:
            client.receive(missing, on_bytes)
    except EnvctlError as exc:
        raise _Staging(exc, sent, sum(m.offset for m in missing)) from exc
    return NodeResult(
        client.node,
        "ok",
        digest=image.manifest.digest,
        bytes_sent=sent,
        blobs_sent=len(missing),
        resumed_from=sum(m.offset for m in missing),
        seconds=time.monotonic() - start,
    )


class _Staging(Exception):
    def __init__(self, error: EnvctlError, sent: int, resumed: int) -> None:
        super().__init__(str(error))
        self.error, self.sent, self.resumed = error, sent, resumed


def push(
    image: OciImage,
    targets: Sequence[NodeTarget],
    connect: Connect,
    opts: PushOptions,
    reporter: PushReporter | None = None,
) -> DeliveryReport:
    """Deliver ``image`` as environment ``opts.env`` to every target; never raises per node."""
    rep = reporter or NullReporter()
    digest = image.manifest.digest
    with connected(targets, connect, opts.parallel, opts) as clients:
        nodes = {
            name: _Node(c, NodeResult(name, "skipped"))
            if isinstance(c, NodeClient)
            else _Node(None, NodeResult(name, "failed", reason=c.message, digest=digest))
            for name, c in clients.items()
        }
        failures = sum(n.client is None for n in nodes.values())
        lock = threading.Lock()

        def stage_one(name: str) -> None:
            nonlocal failures
            node = nodes[name]
            if node.client is None:
                return
            with lock:
                if opts.max_fail is not None and failures > opts.max_fail:
                    node.result = replace(node.result, reason="failure budget exceeded; not staged")
                    return
            try:
                node.result = _stage(node.client, image, rep)
            except _Staging as exc:
                node.result = NodeResult(
                    name,
                    "failed",
                    reason=exc.error.message,
                    digest=digest,
                    bytes_sent=exc.sent,
                    resumed_from=exc.resumed,
                )
            else:
                try:
                    # Unpack / load now, while other nodes still receive: nothing is visible
                    # before the switch, and the switch finds the work done (prepare is idempotent).
                    node.client.call("prepare", opts.env, digest)
                    node.staged = True
                except EnvctlError as exc:
                    node.result = replace(node.result, status="failed", reason=f"prepare: {exc.message}")
            if node.result.status == "failed":
                with lock:
                    failures += 1
            rep.node_finished(name, node.result)

        rep.phase("stage")
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=max(1, opts.parallel)) as pool:
            list(pool.map(stage_one, list(nodes)))

        rep.phase("activate")
        staged_at = time.monotonic()
        staged = [n for n in nodes.values() if n.staged]
        blocked = (opts.atomic and failures > 0) or (opts.max_fail is not None and failures > opts.max_fail)
        if blocked:
            why = "not activated: " + (
                "another node failed (--atomic)" if opts.atomic else "failure budget exceeded (--max-fail)"
            )
            for n in staged:
                n.result = replace(n.result, status="skipped", reason=why)
        elif opts.atomic:
            _activate_atomic(staged, opts, digest, opts.parallel)
        else:
            _run_all(staged, lambda n: _switch(n, opts, digest), opts.parallel)
        timings = {"stage": staged_at - started, "activate": time.monotonic() - staged_at}
    report = DeliveryReport("push", opts.env, digest, {k: n.result for k, n in nodes.items()}, timings)
    _record(report, image)
    return report


def _run_all(nodes: Sequence[_Node], fn: Callable[[_Node], None], parallel: int) -> None:
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        list(pool.map(fn, nodes))


def _switch(node: _Node, opts: PushOptions, digest: str) -> None:
    assert node.client is not None
    try:
        doc = node.client.call("switch", opts.env, digest)
    except EnvctlError as exc:
        node.result = replace(node.result, status="failed", reason=exc.message)
        return
    node.old_state = doc.get("old")
    prev = (doc.get("old") or {}).get("current") or {}
    changed = bool(doc["changed"] or node.result.blobs_sent)
    node.result = replace(node.result, status="ok" if changed else "unchanged", previous=prev.get("digest"))


def _activate_atomic(nodes: Sequence[_Node], opts: PushOptions, digest: str, par: int) -> None:
    """Every node staged and prepared: switch all; undo the switched ones if one switch fails."""
    _run_all(nodes, lambda n: _switch(n, opts, digest), par)
    if not any(n.result.status == "failed" for n in nodes):
        return
    for n in nodes:
        if n.result.status == "failed" or n.client is None:
            continue
        try:
            import json

            n.client.call("restore", opts.env, stdin=json.dumps(n.old_state).encode())
            n.result = replace(
                n.result,
                status="skipped",
                reason="switched back: another node failed to switch (--atomic)",
            )
        except EnvctlError as exc:
            n.result = replace(n.result, status="failed", reason=f"undo failed: {exc.message}")


def _record(report: DeliveryReport, image: OciImage) -> None:
    details = report.as_json()
    details["image"] = str(image.root)
    ledger.record(report.operation, report.digest or "", sorted(report.nodes), report.outcome, details)
