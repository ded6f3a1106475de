"""``--fanout relay``: the sender streams each blob to a few nodes; the others fetch it from a node
that holds it or is receiving it, so the sender's link carries about one copy.

The tree comes from ``core.relay_plan`` (racks from the inventory's groups). Every relaying node
runs the agent's ``relay-serve`` over its own SSH session for the push's lifetime, with a per-push
certificate and token handed over that session's stdin (``adapters.relay_tls``); every other
node runs ``fetch`` over its SSH session, told its sources (parent first, then each ancestor)
and their certificates' pins. A node whose sources all fail (a relay died, stalled, was too slow
or sent corrupt bytes) gets the rest from the sender, like a direct push: it resumes from its
partials. Only the stage phase changes; claims, prepare, activation and the ledger stay push's.
"""

from __future__ import annotations

import io
import json
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from envctl.adapters.oci_layout import OciImage
from envctl.adapters.relay_tls import RelayCredentials, make_credentials, new_token
from envctl.core.delivery import Delivered, NotDelivered
from envctl.core.node import NodeSpec
from envctl.core.relay_plan import RelayPlan, plan_relay, sources
from envctl.errors import EnvctlError
from envctl.services.deliver.nodeclient import NodeClient
from envctl.services.deliver.push import DirectStager, Held, PushReporter, holders_of

#: ports a relay listens on: below Linux's ephemeral range (32768-60999), so never one an
#: outgoing connection holds; a port taken anyway makes that node no relay (children fall back)
PORTS = (20000, 32767)
MAX_SERVE_S = 6 * 3600.0  # a relay ends by then even if its SSH session somehow stays open


class _HeldOpen(io.RawIOBase):
    """The serve command's stdin: its document, then (at the push's end) ``stop``."""

    def __init__(self, document: bytes, stop: threading.Event) -> None:
        self._parts = [document, b"stop\n"]
        self._stop = stop

    @property
    def size(self) -> int:
        return sum(len(p) for p in self._parts)

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        if not self._parts:
            return 0
        if len(self._parts) == 1:
            self._stop.wait()
        part = self._parts[0]
        n = min(len(buf), len(part))
        buf[:n] = part[:n]
        self._parts[0] = part[n:]
        if not self._parts[0]:
            self._parts.pop(0)
        return n


class RelayStager:
    """Stages through a relay tree (see the module docstring)."""

    name = "relay"
    surveys = True  # nodes that hold the whole image already root the tree (core.relay_plan)

    def __init__(
        self,
        fanout: int = 2,
        seeds: int = 1,
        plaintext: bool = False,
        stall: float = 10.0,
        min_rate: float = 1e6,
        window: float = 10.0,
    ) -> None:
        self.fanout, self.seeds, self.plaintext = fanout, seeds, plaintext
        self.stall, self.min_rate, self.window = stall, min_rate, window
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._serving: list[threading.Thread] = []

    def begin(
        self,
        image: OciImage,
        nodes: Sequence[NodeSpec],
        survey: Mapping[str, Held] | None = None,
    ) -> None:
        """Lay out the tree (rooted at the surveyed nodes that hold every blob already) and make
        the push's token and the relays' certificates."""
        self.plan: RelayPlan = plan_relay(
            [(n.name, n.groups) for n in nodes], self.fanout, self.seeds, holders_of(image, survey)
        )
        self.specs = {n.name: n for n in nodes}
        self.survey = dict(survey or {})  # each node's have answer, asked before the plan
        self.token = new_token()
        self.creds: dict[str, RelayCredentials] = {
            name: make_credentials(name, self.specs[name].host) for name in self.plan.relays()
        }
        self.ports = {name: PORTS[0] + secrets.randbelow(PORTS[1] - PORTS[0]) for name in self.creds}
        self._stop.clear()
        self._serving = []
        self.served: dict[str, Any] = {}
        self.from_sender = self.relayed = 0
        self.switches: dict[str, list[dict[str, Any]]] = {}
        self.fell_back: list[str] = []

    def parallel(self, requested: int, count: int) -> int:
        """Every node at once: a child waits on its parent, so both must be staging."""
        return max(requested, count)

    def stage(self, client: NodeClient, image: OciImage, reporter: PushReporter) -> Delivered:
        """Start this node's relay if it has children, then receive from the sender (a seed) or
        fetch from its sources; whatever they could not bring comes from the sender."""
        name, start = client.node, time.monotonic()
        held = self.survey.get(name)  # asked before the plan (that installed the agent too)
        if held is None:
            try:
                held = client.have([b.digest for b in image.blobs])  # installs the agent, if need be
            except EnvctlError as exc:
                raise NotDelivered.of(exc, image.manifest.digest) from exc
        if name in self.creds:
            self._serve(client)
        if self.plan.parents[name] is None:  # a seed; or a holder, to which nothing is sent
            return self._direct(client, image, reporter, held, start)
        return self._fetch(client, image, reporter, held, start)

    def _direct(
        self,
        client: NodeClient,
        image: OciImage,
        reporter: PushReporter,
        held: tuple[set[str], dict[str, int]] | None = None,
        start: float | None = None,
    ) -> Delivered:
        try:
            done = DirectStager().stage(client, image, reporter, held, start)
        except NotDelivered as failed:
            with self._lock:
                self.from_sender += failed.bytes_sent
            raise
        with self._lock:
            self.from_sender += done.bytes_sent
        return done

    def _serve(self, client: NodeClient) -> None:
        name, creds = client.node, self.creds[client.node]
        document = {
            "token": self.token,
            "tls": not self.plaintext,
            "cert": creds.cert_pem,
            "key": creds.key_pem,
            "bind": self.specs[name].host,
            "port": self.ports[name],
            "max_seconds": MAX_SERVE_S,
        }
        source = _HeldOpen(json.dumps(document).encode() + b"\n", self._stop)

        def run() -> None:
            try:
                doc = client.stream("relay-serve", source, source.size, timeout=MAX_SERVE_S)  # type: ignore[arg-type]
            except EnvctlError as exc:
                doc = {"error": exc.message}
            with self._lock:
                self.served[name] = doc

        thread = threading.Thread(target=run, name=f"relay-{name}", daemon=True)
        thread.start()
        with self._lock:
            self._serving.append(thread)

    def _fetch(
        self,
        client: NodeClient,
        image: OciImage,
        reporter: PushReporter,
        held: tuple[set[str], dict[str, int]],
        start: float,
    ) -> Delivered:
        name, digest = client.node, image.manifest.digest
        present, partial = held
        missing = [b for b in image.blobs if b.digest not in present]
        resumed = sum(min(partial.get(b.digest, 0), b.size) for b in missing)
        if not missing:
            reporter.node_started(name, 0)
            return Delivered("ok", digest, seconds=time.monotonic() - start)
        reporter.node_started(name, sum(b.size for b in missing) - resumed)
        relays = [s for s in sources(self.plan, name) if s in self.creds]
        document = {
            "token": self.token,
            "tls": not self.plaintext,
            "sources": [
                {"name": s, "host": self.specs[s].host, "port": self.ports[s], "pin": self.creds[s].pin}
                for s in relays
            ],
            "blobs": [[b.digest, b.size] for b in missing],
            "stall": self.stall,
            "min_rate": self.min_rate,
            "window": self.window,
        }
        fetched, switched, received = 0, [], set()
        try:
            doc = client.call("relay-fetch", stdin=json.dumps(document).encode())
            fetched, switched = int(doc["bytes_written"]), list(doc["switches"])
            received = set(doc["received"])
            reporter.node_bytes(name, fetched)
        except EnvctlError as exc:
            switched = [{"from": "relays", "kind": getattr(exc, "kind", "failed"), "why": exc.message}]
        with self._lock:
            self.relayed += fetched
            if switched:
                self.switches[name] = switched
        if received >= {b.digest for b in missing}:  # each verified by the agent: nothing to ask again
            return Delivered(
                "ok",
                digest,
                bytes_sent=fetched,
                blobs_sent=len(missing),
                resumed_from=resumed,
                seconds=time.monotonic() - start,
            )
        try:
            rest = self._direct(client, image, reporter)  # nothing left: one `have`, no bytes
        except NotDelivered as failed:
            raise NotDelivered(
                failed.message, failed.hint, digest=digest, bytes_sent=fetched + failed.bytes_sent
            ) from failed
        if rest.blobs_sent:
            with self._lock:
                self.fell_back.append(name)
        return Delivered(
            "ok",
            digest,
            bytes_sent=fetched + rest.bytes_sent,
            blobs_sent=len(missing),
            resumed_from=resumed,
            seconds=time.monotonic() - start,
        )

    def end(self) -> dict[str, Any]:
        """Stop every relay (their ports close, their processes end) and say how it went."""
        self._stop.set()
        for thread in self._serving:
            thread.join(30.0)
        plan = getattr(self, "plan", None)
        if plan is None:
            return {}
        return {
            "tree": plan.to_dict(),
            "racks": dict(plan.racks),
            "relay_fanout": self.fanout,
            "relay_seeds": self.seeds,
            "holders": sorted(plan.holders),
            "encrypted": not self.plaintext,
            "bytes_from_sender": self.from_sender,
            "bytes_relayed": self.relayed,
            "reparented": dict(self.switches),
            "fell_back_to_sender": sorted(self.fell_back),
            "relays": {n: self.served.get(n, {"error": "never started"}) for n in self.creds},
        }
