"""``--fanout registry``: the image goes once to an OCI registry, then every node fetches from it.

``begin`` uploads the blobs the registry lacks and the manifest (``adapters.registry_push``), so
this machine's link carries at most one copy whatever the node count. ``stage`` then asks each
node's agent to ``fetch`` the blobs it lacks by digest (``envctl.node.pull``): from its group's
``registry_mirror`` first when the inventory names one (a Spegel, Dragonfly or Harbor proxy),
then from the registry; every blob is verified before it enters the node's store and a broken
pull resumes from its partial. The agent's store then holds the same blobs a direct push leaves,
so prepare, switch, rollback, status and gc are the direct push's own, for every runtime (docker
and podman nodes load from the store as after a direct push: see docs/fanout.md).

The nodes' login travels over their SSH channel's stdin, in the fetch request: a token scoped to
pulling this repository (renewed for each node while staging lasts), or Basic credentials when
that is all the registry speaks. The agent holds it in memory; nothing writes it on a node. With
``NodePull.auth == "node"`` nothing of the sender's login is sent: each agent reads its node's own
docker login (``envctl.node.pull_login``). A private CA (``NodePull.ca_pem``) rides in the same
request and is loaded from memory.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from envctl.adapters.oci_layout import OciImage
from envctl.adapters.registry_push import Pushed, RegistryPusher, Upload
from envctl.core.delivery import Delivered, NotDelivered
from envctl.core.node import NodeSpec
from envctl.core.registry_target import NodePull, RegistryTarget
from envctl.errors import EnvctlError, RemoteSourceError
from envctl.services.deliver.nodeclient import NodeClient
from envctl.services.deliver.push import Held, PushReporter


class _Announced(io.RawIOBase):
    """A node's ``fetch`` stdin in follow mode: the request, then each blob's line once the
    registry holds that blob (``wait`` blocks until then, or raises the upload's error)."""

    def __init__(self, lines: Sequence[tuple[str | None, str]], wait: Callable[[str], None]) -> None:
        self._lines = [(d, t.encode()) for d, t in lines]
        self._wait = wait
        self.size = sum(len(t) for _, t in self._lines)

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        if not self._lines:
            return 0
        digest, text = self._lines[0]
        if digest is not None:
            self._wait(digest)
            self._lines[0] = (None, text)  # waited for: the rest of the line goes as it is
        n = min(len(buf), len(text))
        buf[:n] = text[:n]
        if n == len(text):
            self._lines.pop(0)
        else:
            self._lines[0] = (None, text[n:])
        return n


class RegistryStager:
    """Stage through ``target`` (see the module docstring)."""

    name = "registry"
    surveys = False

    def __init__(
        self,
        target: RegistryTarget,
        pusher: Callable[[RegistryTarget], RegistryPusher] = RegistryPusher,
        pull: NodePull | None = None,
    ) -> None:
        self.target = target
        self.pull = pull or NodePull()
        self._pusher = pusher(target)
        self._lock = threading.Lock()
        self._pushed: Pushed | None = None
        self._upload_s = 0.0
        self._mirrors: dict[str, str] = {}

    def begin(
        self,
        image: OciImage,
        nodes: Sequence[NodeSpec],
        survey: Mapping[str, Held] | None = None,
    ) -> None:
        """Ask the registry whether it has the image (an unreachable registry or a refused login
        raises an EnvctlError here, and every node then fails before it is asked anything), then
        upload what it lacks in the background: each node's pull starts with the first blob."""
        self._start = time.monotonic()
        self._blobs = [
            Upload(b.digest, b.size, path=image.blob_path(b.digest)) for b in (*image.layers, image.config)
        ]
        m = image.manifest
        self._manifest = Upload(
            m.digest, m.size, data=image.blob_path(m.digest).read_bytes(), media_type=m.media_type
        )
        self._mirrors = {n.name: n.registry_mirror for n in nodes if n.registry_mirror}
        self._ready = {u.digest: threading.Event() for u in (*self._blobs, self._manifest)}
        self._failure: EnvctlError | None = None
        self._gave_up = threading.Event()
        assert m.media_type is not None
        lacks = not self._pusher.has_manifest(m.digest, m.media_type)
        self._uploading = threading.Thread(
            target=self._upload, args=(lacks,), name="registry-upload", daemon=True
        )
        self._uploading.start()

    def _upload(self, lacks_manifest: bool) -> None:
        try:
            self._pushed = self._pusher.push(
                self._blobs,
                self._manifest,
                on_blob=lambda d: self._ready[d].set(),
                lacks_manifest=lacks_manifest,
            )
        except EnvctlError as exc:
            self._failure = exc
            self._gave_up.set()
        finally:
            self._upload_s = time.monotonic() - self._start

    def _wait(self, digest: str) -> None:
        """Until the registry holds ``digest``; the upload's own error if it failed first."""
        while not self._ready[digest].wait(0.2):
            if self._gave_up.is_set():
                raise self._failure or RemoteSourceError(
                    str(self.target), "the push ended before the registry held every blob"
                )

    def _request(self) -> dict[str, Any]:
        """What the fetch request says about the login and the CA (see the module docstring)."""
        more: dict[str, Any] = {} if self.pull.ca_pem is None else {"ca": self.pull.ca_pem}
        if self.pull.auth == "node":
            return {**more, "node_login": self.target.host}
        return {**more, "auth": self._authorization()}

    def _authorization(self) -> str | None:
        with self._lock:  # the token cache is shared by the staging threads
            return self._pusher.node_authorization()

    def stage(self, client: NodeClient, image: OciImage, reporter: PushReporter) -> Delivered:
        """Have the node fetch what it lacks; raise ``NotDelivered``."""
        start = time.monotonic()
        digest = image.manifest.digest
        sources = [self.target.base]
        mirror = client.spec.registry_mirror
        if mirror:
            sources.insert(0, f"{mirror}/v2/{self.target.repository}")
        blobs = [
            {"digest": b.digest, "size": b.size, "manifest": None} for b in (*image.layers, image.config)
        ]
        blobs.append({"digest": digest, "size": image.manifest.size, "manifest": image.manifest.media_type})
        reporter.node_started(client.node, sum(b.size for b in image.blobs))
        try:
            request = {
                "sources": sources,
                **self._request(),
                "blobs": [],
                "ns": self.target.host,
                "follow": True,
            }
            announced = _Announced(
                [(None, json.dumps(request) + "\n")]
                + [(str(b["digest"]), json.dumps(b) + "\n") for b in blobs]
                + [(None, "end\n")],
                self._wait,
            )
            doc = client.stream("fetch", announced, announced.size)  # type: ignore[arg-type]
        except EnvctlError as exc:
            raise NotDelivered.of(exc, digest) from exc
        written = int(doc.get("bytes_written", 0))
        reporter.node_bytes(client.node, written)
        return Delivered(
            "ok",
            digest,
            bytes_sent=written,
            blobs_sent=len(doc.get("fetched", [])),
            resumed_from=int(doc.get("resumed_from", 0)),
            seconds=time.monotonic() - start,
        )

    def end(self) -> dict[str, Any]:
        """What the report shows: the registry, what went up to it, and the mirrors used."""
        uploading = getattr(self, "_uploading", None)
        if uploading is not None:
            self._gave_up.set()  # no node waits any more
            uploading.join()
        pushed = self._pushed
        out: dict[str, Any] = {
            "registry": str(self.target),
            "upload_seconds": round(self._upload_s, 3),
            # nodes pulled each blob once it was up: their seconds include the upload's
            "upload_overlapped": True,
        }
        if pushed is not None:
            out.update(
                blobs_uploaded=pushed.blobs_uploaded,
                bytes_uploaded=pushed.bytes_uploaded,
                blobs_present=pushed.blobs_present,
            )
        out["auth"] = "node's own login" if self.pull.auth == "node" else self._pusher.auth_kind()
        if self.pull.ca_source:
            out["ca"] = self.pull.ca_source
        if self._mirrors:
            out["mirrors"] = dict(sorted(self._mirrors.items()))
        return out

    def parallel(self, requested: int, count: int) -> int:
        """``--parallel`` as given: each node's bytes come from the registry, not from here."""
        return requested
